#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "oac/result.hpp"

namespace oac {

// Mirrors "preprocess.localise": how a whole radiograph is searched for knee joints (oac/localise.hpp).
struct LocaliseSpec {
  int template_size = 0;
  // template_size^2 values in [0,1], row-major: the mean training crop, so a match is framed as
  // the training crops are.
  std::vector<float> knee_template;
  double smallest_knee = 0;        // smallest box side searched, as a fraction of the longer side
  int min_knee_pixels = 0;         // nor below this many pixels: a smaller knee lacks the detail the model reads
  int scale_steps = 0;             // box sides searched, geometric from the smallest to the shorter side
  double min_score = 0;            // a first knee matches at least this well
  double pair_min_score = 0;       // a second knee beside the first matches at least this well
  // A negative (bone dark) joint crop: the weighted sum of its PolarityMeasures (oac/localise.hpp)
  // is at or below -threshold. Each measure alone is fooled by some framings or collections;
  // tools/data/polarity_rule.py fits the weights on the training crops.
  struct PolarityRule {
    double profile = 0;
    double frame = 0;
    double brightness = 0;
    double skew = 0;
    double threshold = 0;
  } polarity;
  // A first knee at least this fraction of the shorter side means a joint crop; a picture whose
  // shorter side times this is below min_knee_pixels is one without a search.
  double joint_crop_fraction = 0;
};

// Mirrors "preprocess.radiograph": a picture is refused before any knee is looked for when it is
// coloured or rough beyond these (PictureMeasures); tools/data/radiograph_check.py sets them from
// the training images, so none of those would be refused.
struct RadiographSpec {
  double max_colour = 0;
  double max_roughness = 0;
};

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
  LocaliseSpec localise;
  RadiographSpec radiograph;
};

// P(OA) = sigmoid(oa_logit / oa_temperature + oa_bias): the bias undoes the shift that training's
// class weighting leaves in the logit, which a temperature alone cannot.
struct CalibrationSpec {
  double oa_temperature = 0;
  double oa_bias = 0;
  double kl_temperature = 0;
};

struct OodSpec {
  double threshold = 0;
};

// Mirrors "kl_set": the KL prediction set (split conformal, adaptive prediction sets). The set
// holds the grades in order of decreasing calibrated probability until their cumulative
// probability exceeds `threshold` (0: the most probable grade alone; 1: every grade). Fitted so
// that the set holds the true grade for `coverage` of knees like the validation split's
// (tools/calibrate.py).
struct KlSetSpec {
  double coverage = 0;
  double threshold = 0;
};

// Mirrors "kl_grade": how the one KL grade shown is read from the calibrated probabilities. "argmax"
// takes the most probable grade; "cut_points" counts the cut points below the expected grade
// (sum of grade x probability), which tools/evaluation/calibrate.py tunes on validation for QWK and
// accuracy when that reads grades better than the argmax.
struct KlGradeSpec {
  bool by_cut_points = false;
  std::array<double, 4> cut_points{};  // ascending, within [0, 4]; read only with by_cut_points
};

struct ModelSpec {
  PreprocessSpec preprocess;
  CalibrationSpec calibration;
  double threshold = 0;  // on the calibrated P(OA)
  KlGradeSpec kl_grade;
  KlSetSpec kl_set;
  OodSpec ood;
};

// Reads the fields the core uses from a model card (JSON text) and checks their
// types and ranges. Unknown fields are ignored.
Result<ModelSpec> parse_model_card(std::string_view json_text);

}  // namespace oac
