#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "oac/image.hpp"
#include "oac/model_card.hpp"
#include "oac/result.hpp"

namespace oac {

inline constexpr int kKlGrades = 5;

struct Prediction {
  float p_oa = 0;  // calibrated P(KL >= 2)
  bool oa = false;
  std::array<float, kKlGrades> kl_probs{};
  int kl_grade = 0;  // by the card's rule (ModelSpec::kl_grade): the argmax, or cut points on the expected grade
  // The KL prediction set (ModelSpec::kl_set): kl_set[g] is true when grade g is in it. Grades join
  // in order of decreasing probability (ties: the lower grade first) until their cumulative
  // probability exceeds the card's threshold, so the set always holds the most probable grade and
  // may skip a grade.
  std::array<bool, kKlGrades> kl_set{};
  bool in_distribution = false;
};

// `kl_logits` points to kKlGrades values.
Prediction interpret(float oa_logit, const float* kl_logits, float ood_score, const ModelSpec& spec);

// RGBA, crop.width * crop.height * 4 bytes: the min-max normalised CAM, bilinearly
// upsampled to the crop, coloured with a viridis-like map and blended over the grey
// crop with `opacity` (clamped to [0,1]).
Result<std::vector<uint8_t>> render_cam(const GrayImage& crop, const float* cam, int cam_width, int cam_height,
                                        float opacity);

// RGBA, image.width * image.height * 4 bytes: the grey image in [0,1] as opaque bytes.
std::vector<uint8_t> grey_rgba(const GrayImage& image);

// The crop at the size it is shown: downscaled with the model input's antialiased resize so its
// longer side is at most `max_side`, else (or when max_side <= 0) unchanged. A 2048-px crop drawn
// in a 300-px box would otherwise cost 16 MB of RGBA per knee and view.
GrayImage fit_for_display(const GrayImage& crop, int max_side);

}  // namespace oac
