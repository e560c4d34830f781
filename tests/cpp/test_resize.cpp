#include <algorithm>
#include <cmath>

#include "test_support.hpp"

using namespace oac_test;

namespace {

oac::GrayImage row_image(std::vector<float> values) {
  const int width = static_cast<int>(values.size());
  return {width, 1, std::move(values)};
}

float largest_deviation(const std::vector<float>& values, float expected) {
  float largest = 0;
  for (float value : values) largest = std::max(largest, std::fabs(value - expected));
  return largest;
}

}  // namespace

// Expected values below are the triangle filter worked by hand; tests/python compares
// against PIL itself on random images.
TEST_CASE("resize is the identity at the same size", "[resize]") {
  const oac::GrayImage image{3, 2, {0.1f, 0.7f, -2.0f, 5.0f, 0.0f, 1.0f}};
  CHECK(oac::resize(image, 3, 2).pixels == image.pixels);
}

TEST_CASE("enlarging interpolates between pixel centres", "[resize]") {
  // Output centres at input coordinates 0.25, 0.75, 1.25, 1.75 with a radius-1 tent.
  const oac::GrayImage out = oac::resize(row_image({0, 1}), 4, 1);
  CHECK(out.pixels == std::vector<float>{0.0f, 0.25f, 0.75f, 1.0f});
}

TEST_CASE("shrinking widens the filter so every input contributes", "[resize]") {
  // 4 -> 2: radius 2 input pixels; weights (0.75, 0.75, 0.25) / 1.75 per output.
  const oac::GrayImage out = oac::resize(row_image({0, 1, 2, 3}), 2, 1);
  CHECK(out.pixels[0] == Approx(1.25 / 1.75).epsilon(1e-7));
  CHECK(out.pixels[1] == Approx(4.0 / 1.75).epsilon(1e-7));
}

TEST_CASE("resize keeps a constant image constant in both directions", "[resize]") {
  const oac::GrayImage flat{37, 23, std::vector<float>(37 * 23, 0.625f)};
  for (auto [width, height] : {std::pair{224, 224}, std::pair{5, 9}, std::pair{37, 100}}) {
    const oac::GrayImage out = oac::resize(flat, width, height);
    REQUIRE(out.width == width);
    REQUIRE(out.height == height);
    CHECK(largest_deviation(out.pixels, 0.625f) <= 1e-6f);
  }
}

TEST_CASE("to_tensor normalises with the card's mean and std", "[resize][tensor]") {
  const oac::PreprocessSpec card = product_spec().preprocess;
  const int size = card.input_size;
  const oac::GrayImage crop{161, 161, std::vector<float>(161 * 161, 0.25f)};
  const std::vector<float> tensor = oac::to_tensor(crop, card);
  REQUIRE(tensor.size() == 3u * size * size);
  for (size_t channel = 0; channel < 3; ++channel) {
    const std::vector<float> plane(tensor.begin() + static_cast<ptrdiff_t>(channel * size * size),
                                   tensor.begin() + static_cast<ptrdiff_t>((channel + 1) * size * size));
    const auto expected = static_cast<float>((0.25 - card.mean[channel]) / card.stddev[channel]);
    CHECK(largest_deviation(plane, expected) <= 1e-5f);
  }

  SECTION("each channel has its own constants, channel-major (NCHW)") {
    oac::PreprocessSpec spec = card;
    spec.input_size = 4;
    spec.mean = {0.0, 0.25, 1.0};
    spec.stddev = {1.0, 0.5, 0.25};
    const std::vector<float> small = oac::to_tensor(oac::GrayImage{2, 2, {1, 1, 1, 1}}, spec);
    REQUIRE(small.size() == 48u);
    CHECK(small[0] == 1.0f);
    CHECK(small[16] == 1.5f);
    CHECK(small[47] == 0.0f);
  }
}

TEST_CASE("prepare runs decode, canonicalise and to_tensor", "[tensor]") {
  const std::vector<uint8_t>& bytes = fixtures::progressive_jpeg_grey;
  const oac::PreprocessSpec spec = product_spec().preprocess;
  const auto prepared = oac::prepare(bytes.data(), bytes.size(), spec);
  REQUIRE(error_of(prepared).empty());
  REQUIRE(prepared.value().size() == 1);
  CHECK(prepared.value()[0].side == "single");
  CHECK(prepared.value()[0].crop.width == prepared.value()[0].crop.height);
  CHECK(prepared.value()[0].tensor.size() == 3u * spec.input_size * spec.input_size);
  CHECK(error_of(oac::prepare(bytes.data(), 0, spec)) == "The file is empty.");
}

TEST_CASE("the self-test probe is the card's knee template as a tensor, the same every time", "[tensor][self-test]") {
  const oac::PreprocessSpec spec = product_spec().preprocess;
  const oac::LocaliseSpec& localise = spec.localise;
  const std::vector<float> probe = oac::self_test_tensor(spec);
  REQUIRE(probe.size() == 3u * spec.input_size * spec.input_size);
  CHECK(probe == oac::self_test_tensor(spec));
  const oac::GrayImage knee{localise.template_size, localise.template_size, localise.knee_template};
  CHECK(probe == oac::to_tensor(knee, spec));
  // A knee, not a flat field: bright bone and the dark joint space span most of the normalised range.
  const auto [darkest, brightest] = std::minmax_element(probe.begin(), probe.end());
  CHECK(*brightest - *darkest > 1.0f);

  oac::PreprocessSpec other = spec;
  other.localise.knee_template.assign(other.localise.knee_template.size(), 0.5f);
  CHECK(oac::self_test_tensor(other) != probe);
}
