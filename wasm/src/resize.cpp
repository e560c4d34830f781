#include <algorithm>
#include <cmath>

#include "oac/preprocess.hpp"

namespace oac {
namespace {

// The input samples one output sample reads, with normalised weights.
struct Taps {
  int first = 0;
  std::vector<double> weights;
};

// Triangle (tent) filter of radius one output pixel. When shrinking, the radius grows
// with the shrink factor so every input sample contributes (antialiasing); output
// sample o is centred on input coordinate (o + 0.5) * scale.
std::vector<Taps> triangle_taps(int input_size, int output_size) {
  const double scale = static_cast<double>(input_size) / output_size;
  const double radius = std::max(scale, 1.0);
  std::vector<Taps> all(static_cast<size_t>(output_size));
  for (int o = 0; o < output_size; ++o) {
    const double centre = (o + 0.5) * scale;
    const int first = std::max(0, static_cast<int>(std::floor(centre - radius + 0.5)));
    const int end = std::min(input_size, static_cast<int>(std::floor(centre + radius + 0.5)));
    Taps& taps = all[static_cast<size_t>(o)];
    taps.first = first;
    double total = 0;
    for (int i = first; i < end; ++i) {
      const double distance = std::fabs(i + 0.5 - centre) / radius;
      const double weight = distance < 1.0 ? 1.0 - distance : 0.0;
      taps.weights.push_back(weight);
      total += weight;
    }
    if (total > 0) {
      for (double& weight : taps.weights) weight /= total;
    }
  }
  return all;
}

GrayImage resize_rows(const GrayImage& image, int width) {
  const std::vector<Taps> columns = triangle_taps(image.width, width);
  GrayImage out{width, image.height, std::vector<float>(static_cast<size_t>(width) * image.height)};
  for (int y = 0; y < image.height; ++y) {
    const float* in_row = image.pixels.data() + static_cast<size_t>(y) * image.width;
    float* out_row = out.pixels.data() + static_cast<size_t>(y) * width;
    for (int x = 0; x < width; ++x) {
      const Taps& taps = columns[static_cast<size_t>(x)];
      double sum = 0;
      for (size_t k = 0; k < taps.weights.size(); ++k) sum += in_row[taps.first + static_cast<int>(k)] * taps.weights[k];
      out_row[x] = static_cast<float>(sum);
    }
  }
  return out;
}

GrayImage resize_columns(const GrayImage& image, int height) {
  const std::vector<Taps> rows = triangle_taps(image.height, height);
  const auto width = static_cast<size_t>(image.width);
  GrayImage out{image.width, height, std::vector<float>(width * height)};
  // Whole rows are accumulated at once for memory locality; each output sample still
  // sums its taps in ascending order, exactly like a per-sample loop would.
  std::vector<double> sums(width);
  for (int y = 0; y < height; ++y) {
    const Taps& taps = rows[static_cast<size_t>(y)];
    std::fill(sums.begin(), sums.end(), 0.0);
    for (size_t k = 0; k < taps.weights.size(); ++k) {
      const float* in_row = image.pixels.data() + (taps.first + k) * width;
      const double weight = taps.weights[k];
      for (size_t x = 0; x < width; ++x) sums[x] += in_row[x] * weight;
    }
    float* out_row = out.pixels.data() + static_cast<size_t>(y) * width;
    for (size_t x = 0; x < width; ++x) out_row[x] = static_cast<float>(sums[x]);
  }
  return out;
}

}  // namespace

// Horizontal pass first, through a float intermediate, as PIL does; a pass whose size
// does not change is the identity and is skipped.
GrayImage resize(const GrayImage& image, int width, int height) {
  GrayImage out = image.width == width ? image : resize_rows(image, width);
  return out.height == height ? out : resize_columns(out, height);
}

std::vector<float> to_tensor(const GrayImage& square_crop, const PreprocessSpec& spec) {
  const int size = spec.input_size;
  const GrayImage resized = resize(square_crop, size, size);
  const size_t plane = static_cast<size_t>(size) * size;
  std::vector<float> tensor(3 * plane);
  for (size_t channel = 0; channel < 3; ++channel) {
    const auto mean = static_cast<float>(spec.mean[channel]);
    const auto deviation = static_cast<float>(spec.stddev[channel]);
    float* out = tensor.data() + channel * plane;
    for (size_t i = 0; i < plane; ++i) out[i] = (resized.pixels[i] - mean) / deviation;
  }
  return tensor;
}

}  // namespace oac
