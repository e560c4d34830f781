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
  prediction.p_oa = static_cast<float>(sigmoid(oa_logit / spec.calibration.oa_temperature + spec.calibration.oa_bias));
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
  // Read from the unrounded values so that near-ties follow the logits, not float rounding.
  if (spec.kl_grade.by_cut_points) {
    double expected = 0;
    for (int k = 0; k < kKlGrades; ++k) expected += k * scaled[k] / total;
    const auto& cuts = spec.kl_grade.cut_points;
    prediction.kl_grade = static_cast<int>(std::count_if(cuts.begin(), cuts.end(), [&](double cut) { return cut < expected; }));
  } else {
    prediction.kl_grade = static_cast<int>(std::max_element(scaled.begin(), scaled.end()) - scaled.begin());
  }
  // Adaptive prediction set, deterministic: a grade joins while the probability of the grades
  // ranked before it is at most the threshold (tools/calibrate.py's score). On the unrounded
  // probabilities, in the order a stable sort gives, so every build and calibrate.py rank alike.
  std::array<int, kKlGrades> order{};
  for (int k = 0; k < kKlGrades; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scaled[a] > scaled[b]; });
  const bool every_grade = spec.kl_set.threshold >= 1;
  double cumulative = 0;
  for (int k : order) {
    if (!every_grade && cumulative > spec.kl_set.threshold) break;
    prediction.kl_set[k] = true;
    cumulative += scaled[k] / total;
  }
  // A NaN score compares false, so a broken OOD head never vouches for an image.
  prediction.in_distribution = ood_score <= spec.ood.threshold;
  return prediction;
}

}  // namespace oac
