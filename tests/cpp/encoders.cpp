#include "encoders.hpp"

#include <algorithm>
#include <cstddef>
#include <string>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

namespace oac_test {
namespace {

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_u32_be(std::vector<uint8_t>& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

void put_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& body) {
  put_u32_be(out, static_cast<uint32_t>(body.size()));
  const size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), body.begin(), body.end());
  put_u32_be(out, crc32(out.data() + type_at, body.size() + 4));
}

std::vector<uint8_t> png_file(int width, int height, PngColour colour, int bit_depth,
                              const std::vector<std::array<uint8_t, 3>>& palette,
                              const std::vector<uint8_t>& palette_alpha, const std::vector<uint8_t>& idat) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> header;
  put_u32_be(header, static_cast<uint32_t>(width));
  put_u32_be(header, static_cast<uint32_t>(height));
  header.push_back(static_cast<uint8_t>(bit_depth));
  header.push_back(static_cast<uint8_t>(colour));
  header.insert(header.end(), {0, 0, 0});  // deflate, adaptive filtering, no interlace
  put_chunk(out, "IHDR", header);
  if (!palette.empty()) {
    std::vector<uint8_t> entries;
    for (const auto& rgb : palette) entries.insert(entries.end(), rgb.begin(), rgb.end());
    put_chunk(out, "PLTE", entries);
  }
  if (!palette_alpha.empty()) put_chunk(out, "tRNS", palette_alpha);
  put_chunk(out, "IDAT", idat);
  put_chunk(out, "IEND", {});
  return out;
}

void append_to_vector(void* context, void* data, int size) {
  auto& out = *static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out.insert(out.end(), bytes, bytes + size);
}

}  // namespace

int channels_of(PngColour colour) {
  switch (colour) {
    case PngColour::grey: return 1;
    case PngColour::rgb: return 3;
    case PngColour::palette: return 1;
    case PngColour::grey_alpha: return 2;
    case PngColour::rgba: return 4;
  }
  return 0;
}

std::vector<uint8_t> zlib_stored(const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out = {0x78, 0x01};
  size_t offset = 0;
  do {
    const size_t length = std::min<size_t>(65535, data.size() - offset);
    const bool last = offset + length == data.size();
    out.push_back(last ? 1 : 0);
    out.push_back(static_cast<uint8_t>(length));
    out.push_back(static_cast<uint8_t>(length >> 8));
    out.push_back(static_cast<uint8_t>(~length));
    out.push_back(static_cast<uint8_t>(~length >> 8));
    out.insert(out.end(), data.begin() + static_cast<ptrdiff_t>(offset),
               data.begin() + static_cast<ptrdiff_t>(offset + length));
    offset += length;
  } while (offset < data.size());
  uint32_t a = 1;
  uint32_t b = 0;
  for (uint8_t byte : data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  put_u32_be(out, (b << 16) | a);
  return out;
}

std::vector<uint8_t> encode_png(const PngImage& image) {
  const size_t row_samples = static_cast<size_t>(image.width) * channels_of(image.colour);
  std::vector<uint8_t> scanlines;
  for (int y = 0; y < image.height; ++y) {
    scanlines.push_back(0);  // filter: none
    for (size_t i = 0; i < row_samples; ++i) {
      const uint16_t sample = image.samples[static_cast<size_t>(y) * row_samples + i];
      if (image.bit_depth == 16) scanlines.push_back(static_cast<uint8_t>(sample >> 8));
      scanlines.push_back(static_cast<uint8_t>(sample));
    }
  }
  return png_file(image.width, image.height, image.colour, image.bit_depth, image.palette, image.palette_alpha,
                  zlib_stored(scanlines));
}

std::vector<uint8_t> png_declaring(int width, int height, PngColour colour, int bit_depth,
                                   const std::vector<uint8_t>& idat) {
  return png_file(width, height, colour, bit_depth, {}, {}, idat);
}

std::vector<uint8_t> encode_jpeg(int width, int height, int channels, const std::vector<uint8_t>& samples,
                                 int quality) {
  std::vector<uint8_t> out;
  stbi_write_jpg_to_func(append_to_vector, &out, width, height, channels, samples.data(), quality);
  return out;
}

std::vector<uint8_t> encode_bmp(int width, int height, int channels, const std::vector<uint8_t>& samples) {
  std::vector<uint8_t> out;
  stbi_write_bmp_to_func(append_to_vector, &out, width, height, channels, samples.data());
  return out;
}

void patch_jpeg_dimensions(std::vector<uint8_t>& jpeg, int width, int height) {
  for (size_t i = 2; i + 8 < jpeg.size(); ++i) {
    const bool start_of_frame = jpeg[i] == 0xff && (jpeg[i + 1] == 0xc0 || jpeg[i + 1] == 0xc2);
    if (!start_of_frame) continue;
    jpeg[i + 5] = static_cast<uint8_t>(height >> 8);
    jpeg[i + 6] = static_cast<uint8_t>(height);
    jpeg[i + 7] = static_cast<uint8_t>(width >> 8);
    jpeg[i + 8] = static_cast<uint8_t>(width);
    return;
  }
}

}  // namespace oac_test
