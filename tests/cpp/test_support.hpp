#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "fixture_files.hpp"
#include "oac/oac.hpp"

namespace oac_test {

inline oac::Result<oac::RawImage> decode_bytes(const std::vector<uint8_t>& bytes, const oac::Limits& limits = {}) {
  return oac::decode(bytes.data(), bytes.size(), limits);
}

// The error message of a failed result ("" if it succeeded), for exact-message checks.
template <typename T>
std::string error_of(const oac::Result<T>& result) {
  return result ? std::string() : result.error().message;
}

// A fixed card for tests of behaviour, so that recalibrating or retuning the product card
// (models/oa-inceptionv3.json, fixtures::model_card) never breaks them.
inline const std::string kTestCard = R"({
  "preprocess": {
    "input_size": 224, "layout": "NCHW", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
    "window_percentiles": [0.5, 99.5], "border_tolerance": 0.02, "border_max_fraction": 0.25,
    "bilateral_min_aspect": 2.4, "fit": "center_crop",
    "localise": {"template_size": 2, "template": ["00ff", "00ff"], "smallest_knee": 0.5, "min_knee_pixels": 2, "scale_steps": 1,
                 "min_score": 0.5, "pair_min_score": 0.4, "joint_crop_fraction": 0.01,
                 "polarity": {"profile": 1, "frame": 1, "brightness": 0, "skew": 0, "threshold": 2}},
    "radiograph": {"max_colour": 1, "max_roughness": 2}
  },
  "calibration": {"oa_temperature": 1.0, "oa_bias": 0.0, "kl_temperature": 1.0},
  "threshold": 0.5,
  "kl_grade": {"rule": "argmax"},
  "kl_set": {"coverage": 0.9, "threshold": 0.8},
  "ood": {"threshold": 1e30}
})";

inline oac::ModelSpec spec_from(const std::string& card) {
  oac::Result<oac::ModelSpec> spec = oac::parse_model_card(card);
  REQUIRE(error_of(spec).empty());
  return spec.value();
}

inline oac::ModelSpec test_spec() { return spec_from(kTestCard); }
inline oac::ModelSpec product_spec() { return spec_from(fixtures::model_card); }

inline oac::RawImage grey_raw(int width, int height, const std::vector<uint16_t>& values, int bit_depth = 8) {
  return oac::RawImage{width, height, 1, bit_depth, values};
}

}  // namespace oac_test
