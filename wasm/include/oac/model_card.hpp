#pragma once

#include <array>
#include <string>
#include <string_view>

#include "oac/result.hpp"

namespace oac {

// Mirrors the "preprocess" object of the model card. There are deliberately no
// built-in defaults: the card is the single source of truth.
struct PreprocessSpec {
  int input_size = 0;
  std::string layout;
  std::array<double, 3> mean{};
  std::array<double, 3> stddev{};  // the card's "std"
  std::array<double, 2> window_percentiles{};
  double border_tolerance = 0;
  double border_max_fraction = 0;
  double bilateral_min_aspect = 0;
  std::string fit;
};

struct CalibrationSpec {
  double oa_temperature = 0;
  double kl_temperature = 0;
};

struct OodSpec {
  double threshold = 0;
};

struct ModelSpec {
  PreprocessSpec preprocess;
  CalibrationSpec calibration;
  double threshold = 0;  // on the calibrated P(OA)
  OodSpec ood;
};

// Reads the fields the core uses from a model card (JSON text) and checks their
// types and ranges. Unknown fields are ignored.
Result<ModelSpec> parse_model_card(std::string_view json_text);

}  // namespace oac
