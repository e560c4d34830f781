#pragma once
// Encoded images produced at build time by tests/fixtures/make_fixtures.py (with PIL).
// All are 64 x 48. Pixel formulas, with ramp(p, n) = p * 255 / (n - 1) (integer division):
//   *_jpeg_rgb:   R = ramp(x, 64), G = ramp(y, 48), B = 128 (lossy)
//   *_jpeg_grey:  ramp(x, 64) (lossy)
//   palette_bmp:  8-bit palette, index (x + y) % 4 into black, red, green, blue
//   one_bit_png:  1-bit, 255 where (x + y) is odd, else 0
//   pil_grey16_png: 16-bit grey, x * 1000 + y * 7 + 3

#include <cstdint>
#include <string>
#include <vector>

namespace oac_test::fixtures {

inline constexpr int kWidth = 64;
inline constexpr int kHeight = 48;

extern const std::vector<uint8_t> progressive_jpeg_rgb;
extern const std::vector<uint8_t> progressive_jpeg_grey;
extern const std::vector<uint8_t> baseline_jpeg_grey;
extern const std::vector<uint8_t> palette_bmp;
extern const std::vector<uint8_t> one_bit_png;
extern const std::vector<uint8_t> pil_grey16_png;
extern const std::string model_card;  // models/oa-inceptionv3.json

}  // namespace oac_test::fixtures
