#include <cmath>

#include "test_support.hpp"

using namespace oac_test;

namespace {

// Percentiles at the extremes, no border cropping, never bilateral: isolates the step under test.
oac::PreprocessSpec plain_spec() {
  oac::PreprocessSpec spec = test_spec().preprocess;
  spec.window_percentiles = {0, 100};
  spec.border_max_fraction = 0;
  spec.bilateral_min_aspect = 1000;
  return spec;
}

oac::Knee only_knee(const oac::Result<std::vector<oac::Knee>>& knees) {
  REQUIRE(error_of(knees).empty());
  REQUIRE(knees.value().size() == 1);
  return knees.value()[0];
}

float at(const oac::GrayImage& image, int x, int y) { return image.pixels[static_cast<size_t>(y) * image.width + x]; }

}  // namespace

TEST_CASE("luminance uses Rec. 601 weights and ignores alpha", "[canonicalise]") {
  // Three pixels: black, pure red, white; alpha varies and must not matter.
  const oac::RawImage rgba{3, 1, 4, 8, {0, 0, 0, 255, 255, 0, 0, 0, 255, 255, 255, 17}};
  const oac::Knee knee = only_knee(oac::canonicalise(rgba, plain_spec()));
  REQUIRE(knee.image.width == 1);  // centre square of a 3 x 1 image
  CHECK(knee.image.pixels[0] == Approx(0.299).epsilon(1e-6));
}

TEST_CASE("grey stored as RGB equals grey stored as grey", "[canonicalise]") {
  std::vector<uint16_t> grey;
  std::vector<uint16_t> rgb;
  for (int i = 0; i < 64; ++i) {
    const auto value = static_cast<uint16_t>((i * 37) % 256);
    grey.push_back(value);
    rgb.insert(rgb.end(), {value, value, value});
  }
  const oac::Knee from_grey = only_knee(oac::canonicalise(grey_raw(8, 8, grey), plain_spec()));
  const oac::Knee from_rgb = only_knee(oac::canonicalise(oac::RawImage{8, 8, 3, 8, rgb}, plain_spec()));
  CHECK(from_grey.image.pixels == from_rgb.image.pixels);
}

// Grey sources find their percentiles by histogram, colour sources by selection: the windows agree,
// with repeated levels, 16-bit values and ranks that fall inside a run of equal values.
TEST_CASE("16-bit grey, grey+alpha and RGB grey window alike", "[canonicalise]") {
  std::vector<uint16_t> grey;
  std::vector<uint16_t> grey_alpha;
  std::vector<uint16_t> rgb;
  for (int i = 0; i < 50 * 40; ++i) {
    const auto value = static_cast<uint16_t>(((i * 7919) % 613) * 97 + (i % 3 == 0 ? 60000 - 58000 : 0));
    grey.push_back(value);
    grey_alpha.insert(grey_alpha.end(), {value, static_cast<uint16_t>(i)});
    rgb.insert(rgb.end(), {value, value, value});
  }
  oac::PreprocessSpec spec = plain_spec();
  spec.window_percentiles = {3.7, 96.1};
  const oac::Knee from_grey = only_knee(oac::canonicalise(grey_raw(50, 40, grey, 16), spec));
  const oac::Knee from_grey_alpha = only_knee(oac::canonicalise(oac::RawImage{50, 40, 2, 16, grey_alpha}, spec));
  const oac::Knee from_rgb = only_knee(oac::canonicalise(oac::RawImage{50, 40, 3, 16, rgb}, spec));
  CHECK(from_grey.image.pixels == from_rgb.image.pixels);
  CHECK(from_grey_alpha.image.pixels == from_rgb.image.pixels);
  const auto [low, high] = std::minmax_element(from_grey.image.pixels.begin(), from_grey.image.pixels.end());
  CHECK(*low == 0.0f);
  CHECK(*high == 1.0f);
}

TEST_CASE("percentile window maps 8-bit and 16-bit sources to the same scale", "[canonicalise]") {
  std::vector<uint16_t> eight;
  std::vector<uint16_t> sixteen;
  for (int i = 0; i < 100; ++i) {
    eight.push_back(static_cast<uint16_t>(i * 2));
    sixteen.push_back(static_cast<uint16_t>(i * 2 * 257));
  }
  oac::PreprocessSpec spec = plain_spec();
  spec.window_percentiles = {10, 90};
  const oac::Knee from_eight = only_knee(oac::canonicalise(grey_raw(10, 10, eight), spec));
  const oac::Knee from_sixteen = only_knee(oac::canonicalise(grey_raw(10, 10, sixteen, 16), spec));
  CHECK(from_eight.image.pixels == from_sixteen.image.pixels);

  // Rank rule: index floor(p/100 * 99 + 0.5): 10 -> 10 (value 20), 90 -> 89 (value 178).
  const oac::GrayImage& image = from_eight.image;
  CHECK(at(image, 0, 0) == 0.0f);             // value 0, below the window
  CHECK(at(image, 0, 1) == 0.0f);             // value 20, the low percentile
  CHECK(at(image, 1, 1) == Approx(2.0 / 158)); // value 22
  CHECK(at(image, 9, 8) == 1.0f);             // value 178, the high percentile
  CHECK(at(image, 9, 9) == 1.0f);             // value 198, clamped
}

TEST_CASE("a flat image is blank", "[canonicalise][errors]") {
  const auto knees = oac::canonicalise(grey_raw(4, 4, std::vector<uint16_t>(16, 77)), test_spec().preprocess);
  CHECK(error_of(knees) == "The image is blank: it has no contrast to show a knee.");
}

namespace {

// 96 x 96, 8-bit: a smooth bright disc on a dark ground (the scale of bone), or uniform noise
// from a fixed linear congruential generator; as grey, or as RGB with `tint` added to red.
oac::RawImage picture(bool noise, int channels, int tint = 0) {
  constexpr int kSide = 96;
  std::vector<uint16_t> samples;
  uint32_t state = 12345;
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
      state = state * 1664525u + 1013904223u;
      const double distance = std::hypot(x - 48.0, y - 48.0);
      const int value = noise ? static_cast<int>(state >> 24)
                              : static_cast<int>(40 + 180 / (1 + std::exp((distance - 30) / 4)));
      if (channels == 1) {
        samples.push_back(static_cast<uint16_t>(value));
      } else {
        samples.insert(samples.end(), {static_cast<uint16_t>(std::min(value + tint, 255)),
                                       static_cast<uint16_t>(value), static_cast<uint16_t>(value)});
      }
    }
  }
  return oac::RawImage{kSide, kSide, channels, 8, samples};
}

oac::PreprocessSpec radiograph_spec() {
  oac::PreprocessSpec spec = plain_spec();
  spec.radiograph = {0.08, 0.3};  // a tint of 20 of 255 stays under 0.08, one of 60 does not
  return spec;
}

}  // namespace

TEST_CASE("a picture is measured for colour and roughness", "[canonicalise]") {
  const oac::PictureMeasures smooth = oac::measure_picture(picture(false, 1), plain_spec()).value();
  CHECK(smooth.colour == 0);
  CHECK(smooth.roughness < 0.1);
  // Uniform noise: the mean difference of two independent values over their deviation, 1/3 over 1/sqrt(12),
  // a little less once the antialiased shrink to 128 px has interpolated neighbours.
  const oac::PictureMeasures noise = oac::measure_picture(picture(true, 1), plain_spec()).value();
  CHECK(noise.roughness > 0.5);
  CHECK(noise.roughness < 1.2);
  CHECK(oac::measure_picture(picture(false, 3, 30), plain_spec()).value().colour == Approx(30.0 / 255));
  CHECK(error_of(oac::measure_picture(grey_raw(4, 4, std::vector<uint16_t>(16, 9)), plain_spec())) ==
        "The image is blank: it has no contrast to show a knee.");
}

TEST_CASE("coloured or noise-like pictures are refused as not radiographs", "[canonicalise][errors]") {
  const oac::PreprocessSpec spec = radiograph_spec();
  CHECK(error_of(oac::canonicalise(picture(false, 1), spec)).empty());
  CHECK(error_of(oac::canonicalise(picture(false, 3), spec)).empty());     // grey stored as RGB
  CHECK(error_of(oac::canonicalise(picture(false, 3, 20), spec)).empty());  // a faint tint
  CHECK(error_of(oac::canonicalise(picture(false, 3, 60), spec)) ==
        "This picture is in colour, and an X-ray is grey: it looks like a photograph, not a radiograph. Open the "
        "X-ray image itself (PNG, JPEG, BMP or DICOM).");
  CHECK(error_of(oac::canonicalise(picture(true, 1), spec)) ==
        "This picture is fine grain or noise throughout, without the smooth shapes of bone an X-ray shows. Open the "
        "X-ray image itself (PNG, JPEG, BMP or DICOM).");
  // The product card's bounds let a real knee radiograph through and refuse noise.
  const oac::PreprocessSpec product = product_spec().preprocess;
  CHECK(error_of(oac::canonicalise(picture(true, 1), product)).rfind("This picture is fine grain", 0) == 0);
  CHECK(error_of(oac::canonicalise(picture(false, 3, 255), product)).rfind("This picture is in colour", 0) == 0);
}

TEST_CASE("inconsistent raw images are rejected", "[canonicalise][errors]") {
  const oac::PreprocessSpec spec = test_spec().preprocess;
  CHECK(error_of(oac::canonicalise(oac::RawImage{}, spec)) == "The image has no pixels.");
  CHECK(error_of(oac::canonicalise(oac::RawImage{1, 1, 5, 8, {1, 2, 3, 4, 5}}, spec)) ==
        "The image must have 1 to 4 channels.");
  CHECK(error_of(oac::canonicalise(oac::RawImage{2, 2, 1, 8, {1, 2, 3}}, spec)) ==
        "The image's sample count does not match its width, height and channels.");
}

TEST_CASE("uniform dark and bright borders are cropped, at most the allowed fraction", "[canonicalise]") {
  // 40 x 30: 3 black rows on top, 2 black columns on the left, 4 white columns on the right;
  // the interior alternates mid greys so nothing inside looks like a border.
  constexpr int kWidth = 40;
  constexpr int kHeight = 30;
  std::vector<uint16_t> pixels;
  for (int y = 0; y < kHeight; ++y) {
    for (int x = 0; x < kWidth; ++x) {
      uint16_t value = (x + y) % 2 ? 100 : 150;
      if (y < 3 || x < 2) value = 0;
      if (x >= kWidth - 4) value = 255;
      pixels.push_back(value);
    }
  }
  oac::PreprocessSpec spec = plain_spec();
  spec.border_tolerance = 0.02;
  spec.border_max_fraction = 0.25;
  oac::Knee knee = only_knee(oac::canonicalise(grey_raw(kWidth, kHeight, pixels), spec));
  // 34 x 27 after cropping, centre square 27 x 27: its corner is interior column 2 + 3, row 3.
  REQUIRE(knee.image.width == 27);
  CHECK(at(knee.image, 0, 0) == Approx(((2 + 3 + 3) % 2 ? 100 : 150) / 255.0));

  SECTION("the cap applies per side") {
    spec.border_max_fraction = 0.05;  // at most 1 row (of 30) and 2 columns (of 40) per side
    knee = only_knee(oac::canonicalise(grey_raw(kWidth, kHeight, pixels), spec));
    // 36 x 29 remains, centred square 29 x 29 starts at column 2 + 3, row 1: still black border.
    REQUIRE(knee.image.width == 29);
    CHECK(at(knee.image, 0, 0) == 0.0f);
  }
}

TEST_CASE("bilateral image splits at the dark gap into left and right knees", "[canonicalise]") {
  // 640 x 161 like the second collection: two bright blobs, the darkest column at x = 330.
  constexpr int kWidth = 640;
  constexpr int kHeight = 161;
  std::vector<uint16_t> pixels;
  for (int y = 0; y < kHeight; ++y) {
    for (int x = 0; x < kWidth; ++x) {
      const int to_left_blob = std::abs(x - 160) + std::abs(y - 80);
      const int to_right_blob = std::abs(x - 480) + std::abs(y - 80);
      int value = 40 + std::max(0, 200 - std::min(to_left_blob, to_right_blob));
      if (x == 330) value = 5;
      if (x == 329 || x == 331) value = 20;
      value += (x * 7 + y * 3) % 5;  // texture, so no line is uniform
      pixels.push_back(static_cast<uint16_t>(value));
    }
  }
  const oac::PreprocessSpec spec = test_spec().preprocess;
  const auto knees = oac::canonicalise(grey_raw(kWidth, kHeight, pixels), spec);
  REQUIRE(error_of(knees).empty());
  REQUIRE(knees.value().size() == 2);
  const oac::Knee& left = knees.value()[0];
  const oac::Knee& right = knees.value()[1];
  CHECK(left.side == "left");
  CHECK(right.side == "right");
  CHECK(left.image.width == kHeight);
  CHECK(left.image.height == kHeight);
  CHECK(right.image.width == kHeight);
  // Left half is columns [0, 330): square from column 84; right is [331, 640): from column 405.
  // Each blob centre (160 and 480) is therefore at crop column 76 and 75, near the middle.
  // The blob tops are clipped to 1 by the window; the middle of the clipped run is the centre.
  auto bright_centre = [](const oac::GrayImage& image) {
    int first = -1;
    int last = -1;
    for (int x = 0; x < image.width; ++x) {
      if (at(image, x, 80) < 1.0f) continue;
      if (first < 0) first = x;
      last = x;
    }
    return (first + last) / 2;
  };
  CHECK(std::abs(bright_centre(left.image) - 76) <= 2);
  CHECK(std::abs(bright_centre(right.image) - 75) <= 2);

  SECTION("below the aspect threshold it stays one knee") {
    std::vector<uint16_t> texture;
    for (int i = 0; i < 300 * 162; ++i) texture.push_back(static_cast<uint16_t>(40 + (i * 7) % 5));
    const auto single = oac::canonicalise(grey_raw(300, 162, texture), spec);
    REQUIRE(error_of(single).empty());
    REQUIRE(single.value().size() == 1);
    CHECK(single.value()[0].side == "single");
    CHECK(single.value()[0].image.width == 162);
  }
}

TEST_CASE("centre crop of an odd margin keeps the extra column on the right", "[canonicalise]") {
  // 5 x 2: columns valued 0..4 (row 0) and 10..14 (row 1); square side 2 starts at column 1.
  const std::vector<uint16_t> pixels = {0, 1, 2, 3, 4, 10, 11, 12, 13, 14};
  const oac::Knee knee = only_knee(oac::canonicalise(grey_raw(5, 2, pixels), plain_spec()));
  REQUIRE(knee.image.width == 2);
  CHECK(at(knee.image, 0, 0) == Approx(1.0 / 14));
  CHECK(at(knee.image, 1, 1) == Approx(12.0 / 14));
}

TEST_CASE("each half of a bilateral image crops like that knee on its own", "[canonicalise]") {
  // Two 60 x 40 textured knees (each holding 0 and 255, so every window is the same) with a
  // 16-column black gap: 136 x 40, aspect 3.4. The split takes the gap's first column; the
  // rest of the gap is a border of the right half and must not shift its centre crop.
  auto knee = [](int seed) {
    std::vector<uint16_t> pixels;
    for (int y = 0; y < 40; ++y)
      for (int x = 0; x < 60; ++x) pixels.push_back(static_cast<uint16_t>((x * 37 + y * 91 + seed) % 256));
    pixels[0] = 0;
    pixels[1] = 255;
    return pixels;
  };
  const std::vector<uint16_t> left = knee(3);
  const std::vector<uint16_t> right = knee(101);
  std::vector<uint16_t> both;
  for (int y = 0; y < 40; ++y) {
    both.insert(both.end(), left.begin() + y * 60, left.begin() + (y + 1) * 60);
    both.insert(both.end(), 16, 0);
    both.insert(both.end(), right.begin() + y * 60, right.begin() + (y + 1) * 60);
  }
  oac::PreprocessSpec spec = test_spec().preprocess;
  spec.window_percentiles = {0, 100};

  const auto knees = oac::canonicalise(grey_raw(136, 40, both), spec);
  REQUIRE(error_of(knees).empty());
  REQUIRE(knees.value().size() == 2);
  const oac::Knee alone_left = only_knee(oac::canonicalise(grey_raw(60, 40, left), spec));
  const oac::Knee alone_right = only_knee(oac::canonicalise(grey_raw(60, 40, right), spec));
  CHECK(knees.value()[0].image.pixels == alone_left.image.pixels);
  CHECK(knees.value()[1].image.pixels == alone_right.image.pixels);
}
