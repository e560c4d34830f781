// stb_image behind the core's error and limit rules.
//
// Pixels are read through stb's callback interface rather than straight from memory
// because the callbacks reveal when stb asks for bytes past the end of the file: stb
// otherwise pads missing data with zeros and "succeeds" on truncated JPEG and BMP files.

#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
// stb's asserts would abort the process on hostile input; its own checks return errors.
#define STBI_ASSERT(condition) ((void)0)
#include <stb_image.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "decoders.hpp"

namespace oac::detail {
namespace {

enum class Format { png, jpeg, bmp, unknown };

Format sniff_format(const uint8_t* data, size_t size) {
  static constexpr uint8_t kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= sizeof kPng && std::memcmp(data, kPng, sizeof kPng) == 0) return Format::png;
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return Format::jpeg;
  if (size >= 2 && data[0] == 'B' && data[1] == 'M') return Format::bmp;
  return Format::unknown;
}

const char* format_name(Format format) {
  switch (format) {
    case Format::png: return "PNG";
    case Format::jpeg: return "JPEG";
    case Format::bmp: return "BMP";
    case Format::unknown: break;
  }
  return "image";
}

// A read-only cursor over the caller's bytes that records whether stb ran past the end.
class ByteStream {
 public:
  ByteStream(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  static const stbi_io_callbacks& callbacks() {
    static constexpr stbi_io_callbacks kCallbacks = {&ByteStream::read, &ByteStream::skip, &ByteStream::at_end};
    return kCallbacks;
  }

  // True when stb wanted bytes beyond the end of the file.
  bool asked_past_end() const { return ran_out_; }

 private:
  static int read(void* self, char* out, int wanted) {
    auto& stream = *static_cast<ByteStream*>(self);
    const size_t available = stream.size_ - stream.position_;
    const size_t count = std::min(available, static_cast<size_t>(std::max(wanted, 0)));
    if (count == 0 && wanted > 0) stream.ran_out_ = true;
    std::memcpy(out, stream.data_ + stream.position_, count);
    stream.position_ += count;
    return static_cast<int>(count);
  }

  static void skip(void* self, int count) {
    auto& stream = *static_cast<ByteStream*>(self);
    if (count < 0) {
      stream.position_ -= std::min(stream.position_, static_cast<size_t>(-static_cast<long long>(count)));
    } else if (static_cast<size_t>(count) > stream.size_ - stream.position_) {
      stream.ran_out_ = true;
      stream.position_ = stream.size_;
    } else {
      stream.position_ += static_cast<size_t>(count);
    }
  }

  static int at_end(void* self) {
    const auto& stream = *static_cast<ByteStream*>(self);
    return stream.position_ >= stream.size_;
  }

  const uint8_t* data_;
  size_t size_;
  size_t position_ = 0;
  bool ran_out_ = false;
};

struct StbFree {
  void operator()(void* pixels) const { stbi_image_free(pixels); }
};

Error truncated(Format format) {
  return Error{std::string("The ") + format_name(format) +
               " file is truncated: it ends before the image data is complete."};
}

// `detail` is stb's terse reason (or ours), kept because it helps a developer reading a bug report.
Error undecodable(Format format, const char* detail) {
  const std::string name = format_name(format);
  if (detail == nullptr) return Error{"The " + name + " file is damaged or uses an unsupported variant."};
  if (std::strcmp(detail, "outofmem") == 0) {
    return Error{"There is not enough memory to decode this " + name + " image."};
  }
  return Error{"The " + name + " file is damaged or uses an unsupported variant (" + detail + ")."};
}

struct Dimensions {
  uint64_t width = 0;
  uint64_t height = 0;
};

uint32_t big_endian(const uint8_t* at, int bytes) {
  uint32_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | at[i];
  return value;
}

uint32_t little_endian(const uint8_t* at, int bytes) {
  uint32_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | at[i];
  return value;
}

bool is_start_of_frame(uint8_t marker) {
  return marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
}

// Walks the marker segments up to the first start-of-frame.
Result<Dimensions> jpeg_dimensions(const uint8_t* data, size_t size) {
  size_t at = 2;
  while (true) {
    if (at >= size) return truncated(Format::jpeg);
    if (data[at] != 0xff) return undecodable(Format::jpeg, "bad marker");
    while (at < size && data[at] == 0xff) ++at;  // fill bytes
    if (at >= size) return truncated(Format::jpeg);
    const uint8_t marker = data[at++];
    if (marker == 0xd9 || marker == 0xda) return undecodable(Format::jpeg, "no frame header");
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;  // no length field
    if (is_start_of_frame(marker)) {
      if (at + 7 > size) return truncated(Format::jpeg);
      return Dimensions{big_endian(data + at + 5, 2), big_endian(data + at + 3, 2)};
    }
    if (at + 2 > size) return truncated(Format::jpeg);
    const uint32_t length = big_endian(data + at, 2);
    if (length < 2) return undecodable(Format::jpeg, "bad segment length");
    at += length;
  }
}

Result<Dimensions> bmp_dimensions(const uint8_t* data, size_t size) {
  if (size < 18) return truncated(Format::bmp);
  const bool os2_header = little_endian(data + 14, 4) == 12;  // 16-bit dimensions
  if (size < (os2_header ? 22u : 26u)) return truncated(Format::bmp);
  if (os2_header) return Dimensions{little_endian(data + 18, 2), little_endian(data + 20, 2)};
  const auto width = static_cast<int32_t>(little_endian(data + 18, 4));
  const auto height = static_cast<int32_t>(little_endian(data + 22, 4));  // negative: stored top-down
  if (width < 0) return undecodable(Format::bmp, "negative width");
  return Dimensions{static_cast<uint64_t>(width), static_cast<uint64_t>(std::llabs(height))};
}

// The dimensions a header declares. Read here rather than through stbi_info, which reports
// every header failure (zero size, its own size cap) as "unknown image type".
Result<Dimensions> declared_dimensions(Format format, const uint8_t* data, size_t size) {
  switch (format) {
    case Format::png:
      if (size < 24) return truncated(format);
      if (std::memcmp(data + 12, "IHDR", 4) != 0) return undecodable(format, "first chunk is not IHDR");
      return Dimensions{big_endian(data + 16, 4), big_endian(data + 20, 4)};
    case Format::jpeg: return jpeg_dimensions(data, size);
    case Format::bmp: return bmp_dimensions(data, size);
    case Format::unknown: break;
  }
  return Error{"The file is not a PNG, JPEG or BMP image."};
}

}  // namespace

Result<RawImage> decode_with_stb(const uint8_t* data, size_t size, const Limits& limits) {
  const Format format = sniff_format(data, size);
  if (format == Format::unknown) return Error{"The file is not a PNG, JPEG or BMP image."};

  const Result<Dimensions> declared = declared_dimensions(format, data, size);
  if (!declared) return declared.error();
  const auto [width, height] = declared.value();
  if (width == 0 || height == 0) return no_pixels();
  if (width * height > limits.max_pixels) return too_many_pixels(width, height, limits);
  if (const char* problem = format == Format::jpeg ? jpeg_huffman_problem(data, size) : nullptr) {
    return undecodable(format, problem);
  }
  if (format == Format::png) {
    switch (png_chunk_problem(data, size)) {
      case PngChunkProblem::truncated: return truncated(format);
      case PngChunkProblem::empty_first_image_data: return undecodable(format, "empty first image data chunk");
      case PngChunkProblem::none: break;
    }
  }

  bool sixteen_bit = false;
  {
    ByteStream probe(data, size);
    sixteen_bit = stbi_is_16_bit_from_callbacks(&ByteStream::callbacks(), &probe) != 0;
  }

  // stb keeps the last failure reason per thread and does not set one on every path.
  stbi__g_failure_reason = nullptr;
  ByteStream body(data, size);
  int loaded_width = 0;
  int loaded_height = 0;
  int loaded_channels = 0;
  std::unique_ptr<void, StbFree> pixels(
      sixteen_bit ? static_cast<void*>(stbi_load_16_from_callbacks(&ByteStream::callbacks(), &body, &loaded_width,
                                                                   &loaded_height, &loaded_channels, 0))
                  : static_cast<void*>(stbi_load_from_callbacks(&ByteStream::callbacks(), &body, &loaded_width,
                                                                &loaded_height, &loaded_channels, 0)));
  const char* reason = stbi_failure_reason();
  const bool out_of_data = reason != nullptr && std::strcmp(reason, "outofdata") == 0;
  if (body.asked_past_end() || (!pixels && out_of_data)) return truncated(format);
  if (!pixels) return undecodable(format, reason);

  RawImage image;
  image.width = loaded_width;
  image.height = loaded_height;
  image.channels = loaded_channels;
  image.bit_depth = sixteen_bit ? 16 : 8;
  const size_t sample_count = static_cast<size_t>(loaded_width) * loaded_height * loaded_channels;
  if (sixteen_bit) {
    const auto* samples = static_cast<const uint16_t*>(pixels.get());
    image.samples.assign(samples, samples + sample_count);
  } else {
    const auto* samples = static_cast<const uint8_t*>(pixels.get());
    image.samples.assign(samples, samples + sample_count);
  }
  return image;
}

}  // namespace oac::detail
