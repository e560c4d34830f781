#include <algorithm>
#include <cmath>

#include "oac/outputs.hpp"

namespace oac {
namespace {

// Written so that exp never overflows for large |x|.
double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

}  // namespace

Prediction interpret(float oa_logit, const float* kl_logits, float ood_score, const ModelSpec& spec) {
  Prediction prediction;
  prediction.p_oa = static_cast<float>(sigmoid(oa_logit / spec.calibration.oa_temperature));
  prediction.oa = prediction.p_oa >= spec.threshold;

  std::array<double, kKlGrades> scaled{};
  for (int k = 0; k < kKlGrades; ++k) scaled[k] = kl_logits[k] / spec.calibration.kl_temperature;
  const double largest = *std::max_element(scaled.begin(), scaled.end());
  double total = 0;
  for (double& value : scaled) {
    value = std::exp(value - largest);
    total += value;
  }
  for (int k = 0; k < kKlGrades; ++k) prediction.kl_probs[k] = static_cast<float>(scaled[k] / total);
  // Chosen on the unrounded values so that near-ties follow the logits, not float rounding.
  prediction.kl_grade = static_cast<int>(std::max_element(scaled.begin(), scaled.end()) - scaled.begin());
  // A NaN score compares false, so a broken OOD head never vouches for an image.
  prediction.in_distribution = ood_score <= spec.ood.threshold;
  return prediction;
}

}  // namespace oac
