#include <cmath>

#include "test_support.hpp"

using namespace oac_test;

TEST_CASE("interpret applies temperatures, threshold and the OOD limit", "[interpret]") {
  oac::ModelSpec spec = test_spec();
  const float flat[5] = {0, 0, 0, 0, 0};

  oac::Prediction prediction = oac::interpret(0.0f, flat, 0.0f, spec);
  CHECK(prediction.p_oa == 0.5f);
  CHECK(prediction.oa);  // p >= threshold
  for (float p : prediction.kl_probs) CHECK(p == Approx(0.2));
  CHECK(prediction.kl_grade == 0);  // ties go to the lowest grade
  CHECK(prediction.in_distribution);

  SECTION("temperatures divide the logits") {
    spec.calibration.oa_temperature = 2.0;
    spec.calibration.kl_temperature = 2.0;
    const float logits[5] = {0, 2, 4, 0, 0};
    prediction = oac::interpret(2.0f, logits, 0.0f, spec);
    CHECK(prediction.p_oa == Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-6));
    const double total = 3 + std::exp(1.0) + std::exp(2.0);
    CHECK(prediction.kl_probs[1] == Approx(std::exp(1.0) / total).epsilon(1e-6));
    CHECK(prediction.kl_probs[2] == Approx(std::exp(2.0) / total).epsilon(1e-6));
    CHECK(prediction.kl_grade == 2);
  }
  SECTION("the bias shifts the scaled logit") {
    spec.calibration.oa_temperature = 2.0;
    spec.calibration.oa_bias = -0.5;
    CHECK(oac::interpret(3.0f, flat, 0.0f, spec).p_oa == Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-6));
    CHECK(oac::interpret(1.0f, flat, 0.0f, spec).p_oa == 0.5f);
  }
  SECTION("the threshold decides the verdict") {
    spec.threshold = 0.8;
    CHECK_FALSE(oac::interpret(1.0f, flat, 0.0f, spec).oa);  // p = 0.731
    CHECK(oac::interpret(1.5f, flat, 0.0f, spec).oa);        // p = 0.818
  }
  SECTION("extreme logits stay finite") {
    const float extreme[5] = {1000, -1000, 0, 0, 0};
    prediction = oac::interpret(-1000.0f, extreme, 0.0f, spec);
    CHECK(prediction.p_oa == 0.0f);
    CHECK(prediction.kl_probs[0] == 1.0f);
    CHECK(oac::interpret(1000.0f, extreme, 0.0f, spec).p_oa == 1.0f);
  }
  SECTION("OOD score above the threshold, or NaN, is out of distribution") {
    spec.ood.threshold = 10.0;
    CHECK(oac::interpret(0.0f, flat, 10.0f, spec).in_distribution);
    CHECK_FALSE(oac::interpret(0.0f, flat, 10.5f, spec).in_distribution);
    CHECK_FALSE(oac::interpret(0.0f, flat, std::nanf(""), spec).in_distribution);
  }
}

namespace {

// Logits whose softmax (temperature 1) is `probs`.
std::array<float, 5> logits_of(const std::array<double, 5>& probs) {
  std::array<float, 5> logits{};
  for (int k = 0; k < 5; ++k) logits[k] = static_cast<float>(std::log(probs[k]));
  return logits;
}

using Set = std::array<bool, 5>;

Set kl_set_of(const std::array<double, 5>& probs, const oac::ModelSpec& spec) {
  return oac::interpret(0.0f, logits_of(probs).data(), 0.0f, spec).kl_set;
}

}  // namespace

TEST_CASE("interpret's KL set holds grades by probability until the card's threshold is exceeded", "[interpret][kl_set]") {
  oac::ModelSpec spec = test_spec();  // kl_set.threshold 0.8
  REQUIRE(spec.kl_set.threshold == 0.8);

  // 0.5 + 0.27 <= 0.8, so the third most likely grade joins: 0.92.
  CHECK(kl_set_of({0.02, 0.15, 0.5, 0.27, 0.06}, spec) == Set{false, true, true, true, false});
  // Not necessarily contiguous: 0.55 + 0.3 exceeds 0.8 before grade 1 would join.
  CHECK(kl_set_of({0.3, 0.05, 0.55, 0.05, 0.05}, spec) == Set{true, false, true, false, false});
  // A confident grade alone.
  CHECK(kl_set_of({0.01, 0.01, 0.9, 0.04, 0.04}, spec) == Set{false, false, true, false, false});
  // The set always holds the predicted grade.
  const oac::Prediction prediction = oac::interpret(0.0f, logits_of({0.3, 0.05, 0.55, 0.05, 0.05}).data(), 0.0f, spec);
  CHECK(prediction.kl_set[prediction.kl_grade]);

  SECTION("ties go to the lower grade, as kl_grade's do") {
    spec.kl_set.threshold = 0.5;
    const float flat[5] = {0, 0, 0, 0, 0};
    CHECK(oac::interpret(0.0f, flat, 0.0f, spec).kl_set == Set{true, true, true, false, false});  // 0.4 <= 0.5
  }
  SECTION("on the calibrated probabilities") {
    const float logits[5] = {0, 2, 4, 0, 0};
    CHECK(oac::interpret(0.0f, logits, 0.0f, spec).kl_set == Set{false, false, true, false, false});  // 0.840
    spec.calibration.kl_temperature = 2.0;  // 0.564 + 0.207 < 0.8; then the lowest of three tied grades
    CHECK(oac::interpret(0.0f, logits, 0.0f, spec).kl_set == Set{true, true, true, false, false});
  }
  SECTION("a threshold of 0 is the most probable grade alone; 1 is every grade, even those of probability 0") {
    spec.kl_set.threshold = 0.0;
    CHECK(kl_set_of({0.2, 0.25, 0.15, 0.2, 0.2}, spec) == Set{false, true, false, false, false});
    const float extreme[5] = {1000, -1000, 0, 0, 0};
    spec.kl_set.threshold = 0.999;
    CHECK(oac::interpret(0.0f, extreme, 0.0f, spec).kl_set == Set{true, false, false, false, false});
    spec.kl_set.threshold = 1.0;
    CHECK(oac::interpret(0.0f, extreme, 0.0f, spec).kl_set == Set{true, true, true, true, true});
  }
}

namespace {

std::array<uint8_t, 4> pixel(const std::vector<uint8_t>& rgba, int width, int x, int y) {
  const size_t at = (static_cast<size_t>(y) * width + x) * 4;
  return {rgba[at], rgba[at + 1], rgba[at + 2], rgba[at + 3]};
}

}  // namespace

TEST_CASE("render_cam colours the normalised CAM over the crop", "[cam]") {
  const oac::GrayImage crop{4, 2, std::vector<float>(8, 0.5f)};
  const float cam[2] = {-3.0f, 5.0f};  // 2 x 1, normalised to 0 and 1

  SECTION("full opacity shows the colour map, dark violet to yellow") {
    const auto rgba = oac::render_cam(crop, cam, 2, 1, 1.0f);
    REQUIRE(error_of(rgba).empty());
    REQUIRE(rgba.value().size() == 4u * 2 * 4);
    CHECK(pixel(rgba.value(), 4, 0, 0) == std::array<uint8_t, 4>{68, 1, 84, 255});
    CHECK(pixel(rgba.value(), 4, 3, 1) == std::array<uint8_t, 4>{253, 231, 37, 255});
    // Half-pixel-aligned bilinear upsampling: levels 0, 0.25, 0.75, 1 along a row; the
    // map's green channel rises monotonically.
    const auto quarter = pixel(rgba.value(), 4, 1, 0);
    const auto three_quarters = pixel(rgba.value(), 4, 2, 0);
    CHECK(quarter[1] > 1);
    CHECK(three_quarters[1] > quarter[1]);
    CHECK(three_quarters[1] < 231);
    CHECK(pixel(rgba.value(), 4, 1, 0) == pixel(rgba.value(), 4, 1, 1));
  }
  SECTION("zero opacity shows the grey crop") {
    const auto rgba = oac::render_cam(crop, cam, 2, 1, 0.0f);
    REQUIRE(error_of(rgba).empty());
    for (int x = 0; x < 4; ++x) CHECK(pixel(rgba.value(), 4, x, 0) == std::array<uint8_t, 4>{128, 128, 128, 255});
  }
  SECTION("half opacity blends") {
    const auto rgba = oac::render_cam(crop, cam, 2, 1, 0.5f);
    REQUIRE(error_of(rgba).empty());
    // 127.5 * 0.5 + (68, 1, 84) * 0.5, rounded.
    CHECK(pixel(rgba.value(), 4, 0, 0) == std::array<uint8_t, 4>{98, 64, 106, 255});
  }
  SECTION("a flat or NaN CAM shows no activation") {
    const float flat[4] = {2, 2, 2, 2};
    const float with_nan[2] = {std::nanf(""), 1.0f};
    for (const auto& rgba : {oac::render_cam(crop, flat, 2, 2, 1.0f), oac::render_cam(crop, with_nan, 2, 1, 1.0f)}) {
      REQUIRE(error_of(rgba).empty());
      CHECK(pixel(rgba.value(), 4, 0, 0) == std::array<uint8_t, 4>{68, 1, 84, 255});
    }
  }
  SECTION("empty inputs are errors") {
    CHECK(error_of(oac::render_cam(crop, cam, 0, 1, 0.5f)) == "The class-activation map is empty.");
    CHECK(error_of(oac::render_cam(crop, nullptr, 2, 1, 0.5f)) == "The class-activation map is empty.");
    CHECK(error_of(oac::render_cam(oac::GrayImage{}, cam, 2, 1, 0.5f)) ==
          "The crop to draw the heatmap on is empty or inconsistent.");
  }
}

TEST_CASE("grey_rgba writes opaque grey bytes, rounded and clamped", "[cam]") {
  const oac::GrayImage image{3, 1, {0.5f, -1.0f, 2.0f}};
  const std::vector<uint8_t> rgba = oac::grey_rgba(image);
  REQUIRE(rgba.size() == 12);
  CHECK(pixel(rgba, 3, 0, 0) == std::array<uint8_t, 4>{128, 128, 128, 255});
  CHECK(pixel(rgba, 3, 1, 0) == std::array<uint8_t, 4>{0, 0, 0, 255});
  CHECK(pixel(rgba, 3, 2, 0) == std::array<uint8_t, 4>{255, 255, 255, 255});
}

TEST_CASE("fit_for_display shrinks only crops larger than the display size", "[cam]") {
  oac::GrayImage crop{600, 400, std::vector<float>(600 * 400)};
  for (size_t i = 0; i < crop.pixels.size(); ++i) crop.pixels[i] = static_cast<float>(i % 600) / 599.0f;

  const oac::GrayImage fitted = oac::fit_for_display(crop, 300);
  CHECK(fitted.width == 300);
  CHECK(fitted.height == 200);
  CHECK(fitted.pixels == oac::resize(crop, 300, 200).pixels);
  CHECK(oac::fit_for_display(crop, 600).pixels == crop.pixels);
  CHECK(oac::fit_for_display(crop, 0).width == 600);
  CHECK(oac::fit_for_display(oac::GrayImage{2000, 1, std::vector<float>(2000)}, 512).height == 1);
}

TEST_CASE("interpret reads the KL grade by the card's rule", "[interpret][kl_grade]") {
  oac::ModelSpec spec = test_spec();
  const std::array<float, 5> split = logits_of({0.4, 0.3, 0.05, 0.2, 0.05});  // expected 1.25
  CHECK(oac::interpret(0.0f, split.data(), 0.0f, spec).kl_grade == 0);      // argmax
  spec.kl_grade.by_cut_points = true;
  spec.kl_grade.cut_points = {0.9, 1.4, 2.2, 3.3};
  CHECK(oac::interpret(0.0f, split.data(), 0.0f, spec).kl_grade == 1);      // 0.9 < 1.25 <= 1.4
  const std::array<float, 5> severe = logits_of({0.01, 0.01, 0.03, 0.15, 0.8});  // expected 3.72
  CHECK(oac::interpret(0.0f, severe.data(), 0.0f, spec).kl_grade == 4);
  const std::array<float, 5> healthy = logits_of({0.9, 0.08, 0.01, 0.005, 0.005});  // expected 0.125
  CHECK(oac::interpret(0.0f, healthy.data(), 0.0f, spec).kl_grade == 0);
  spec.calibration.kl_temperature = 1000;  // every grade equally likely: expected grade 2
  CHECK(oac::interpret(0.0f, split.data(), 0.0f, spec).kl_grade == 2);
}
