#pragma once
// Test-side image writers: a small PNG encoder (every colour type and bit depth stb reads,
// uncompressed deflate) and stb_image_write for JPEG and BMP.

#include <array>
#include <cstdint>
#include <vector>

namespace oac_test {

enum class PngColour : uint8_t { grey = 0, rgb = 2, palette = 3, grey_alpha = 4, rgba = 6 };

struct PngImage {
  int width = 0;
  int height = 0;
  PngColour colour = PngColour::grey;
  int bit_depth = 8;               // 8 or 16 (palette: 8)
  std::vector<uint16_t> samples;   // interleaved; palette indices for PngColour::palette
  std::vector<std::array<uint8_t, 3>> palette;
  std::vector<uint8_t> palette_alpha;  // tRNS entries, optional
};

int channels_of(PngColour colour);
std::vector<uint8_t> encode_png(const PngImage& image);

// A PNG whose header declares width x height but whose image data is `idat` as given:
// decompression bombs, zero-size headers, corrupt streams.
std::vector<uint8_t> png_declaring(int width, int height, PngColour colour, int bit_depth,
                                   const std::vector<uint8_t>& idat);

// zlib stream of `data` in stored (uncompressed) blocks.
std::vector<uint8_t> zlib_stored(const std::vector<uint8_t>& data);

std::vector<uint8_t> encode_jpeg(int width, int height, int channels, const std::vector<uint8_t>& samples,
                                 int quality);
std::vector<uint8_t> encode_bmp(int width, int height, int channels, const std::vector<uint8_t>& samples);

// Overwrites the big-endian height and width of a JPEG's first start-of-frame segment.
void patch_jpeg_dimensions(std::vector<uint8_t>& jpeg, int width, int height);

}  // namespace oac_test
