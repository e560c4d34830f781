#include <algorithm>
#include <array>
#include <cmath>

#include "oac/outputs.hpp"
#include "oac/preprocess.hpp"

namespace oac {
namespace {

using Rgb = std::array<uint8_t, 3>;

// Nine colours sampled evenly along matplotlib's viridis: dark blue to yellow with
// monotonically increasing lightness, readable by colour-blind viewers.
constexpr std::array<std::array<double, 3>, 9> kViridisAnchors = {{
    {68, 1, 84},
    {71, 44, 122},
    {59, 81, 139},
    {44, 113, 142},
    {33, 144, 141},
    {39, 173, 129},
    {92, 200, 99},
    {170, 220, 50},
    {253, 231, 37},
}};

constexpr std::array<Rgb, 256> make_colour_map() {
  std::array<Rgb, 256> map{};
  constexpr int segments = static_cast<int>(kViridisAnchors.size()) - 1;
  for (int i = 0; i < 256; ++i) {
    const double position = i * segments / 255.0;
    const int segment = std::min(static_cast<int>(position), segments - 1);
    const double t = position - segment;
    for (int c = 0; c < 3; ++c) {
      const double value = kViridisAnchors[segment][c] * (1 - t) + kViridisAnchors[segment + 1][c] * t;
      map[i][c] = static_cast<uint8_t>(value + 0.5);
    }
  }
  return map;
}

constexpr std::array<Rgb, 256> kColourMap = make_colour_map();

// CAM scaled to [0,1]; NaN counts as no activation, a flat CAM as no activation anywhere.
std::vector<float> normalise(const float* cam, size_t count) {
  float low = INFINITY;
  float high = -INFINITY;
  for (size_t i = 0; i < count; ++i) {
    if (std::isnan(cam[i])) continue;
    low = std::min(low, cam[i]);
    high = std::max(high, cam[i]);
  }
  std::vector<float> out(count, 0.0f);
  if (!(high > low) || std::isinf(high - low)) return out;
  for (size_t i = 0; i < count; ++i) {
    if (!std::isnan(cam[i])) out[i] = (cam[i] - low) / (high - low);
  }
  return out;
}

// Source coordinate of destination pixel centres (half-pixel aligned), clamped to the edges.
struct Sample {
  int before;
  int after;
  float t;
};

std::vector<Sample> bilinear_samples(int source_size, int destination_size) {
  std::vector<Sample> samples(static_cast<size_t>(destination_size));
  const float scale = static_cast<float>(source_size) / destination_size;
  for (int d = 0; d < destination_size; ++d) {
    const float position = std::clamp((d + 0.5f) * scale - 0.5f, 0.0f, static_cast<float>(source_size - 1));
    const int before = static_cast<int>(position);
    samples[static_cast<size_t>(d)] = {before, std::min(before + 1, source_size - 1), position - before};
  }
  return samples;
}

// NaN (from a caller's crop) becomes black rather than undefined behaviour.
uint8_t to_byte(float value) { return value > 0 ? static_cast<uint8_t>(std::min(value, 255.0f) + 0.5f) : 0; }

float grey_level(float value) { return std::clamp(value, 0.0f, 1.0f) * 255.0f; }

}  // namespace

Result<std::vector<uint8_t>> render_cam(const GrayImage& crop, const float* cam, int cam_width, int cam_height,
                                        float opacity) {
  if (crop.width <= 0 || crop.height <= 0 ||
      crop.pixels.size() != static_cast<size_t>(crop.width) * crop.height) {
    return Error{"The crop to draw the heatmap on is empty or inconsistent."};
  }
  if (cam == nullptr || cam_width <= 0 || cam_height <= 0) return Error{"The class-activation map is empty."};

  const std::vector<float> heat = normalise(cam, static_cast<size_t>(cam_width) * cam_height);
  const std::vector<Sample> columns = bilinear_samples(cam_width, crop.width);
  const std::vector<Sample> rows = bilinear_samples(cam_height, crop.height);
  const float alpha = std::isnan(opacity) ? 0.0f : std::clamp(opacity, 0.0f, 1.0f);

  std::vector<uint8_t> rgba(static_cast<size_t>(crop.width) * crop.height * 4);
  for (int y = 0; y < crop.height; ++y) {
    const Sample& row = rows[static_cast<size_t>(y)];
    const float* upper = heat.data() + static_cast<size_t>(row.before) * cam_width;
    const float* lower = heat.data() + static_cast<size_t>(row.after) * cam_width;
    for (int x = 0; x < crop.width; ++x) {
      const Sample& column = columns[static_cast<size_t>(x)];
      const float top = upper[column.before] + (upper[column.after] - upper[column.before]) * column.t;
      const float bottom = lower[column.before] + (lower[column.after] - lower[column.before]) * column.t;
      const float level = top + (bottom - top) * row.t;
      const Rgb& colour = kColourMap[static_cast<size_t>(std::clamp(level, 0.0f, 1.0f) * 255.0f + 0.5f)];
      const size_t pixel = static_cast<size_t>(y) * crop.width + x;
      const float grey = grey_level(crop.pixels[pixel]);
      uint8_t* out = rgba.data() + pixel * 4;
      for (int c = 0; c < 3; ++c) out[c] = to_byte(grey * (1 - alpha) + colour[c] * alpha);
      out[3] = 255;
    }
  }
  return rgba;
}

std::vector<uint8_t> grey_rgba(const GrayImage& image) {
  std::vector<uint8_t> rgba(image.pixels.size() * 4);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    const uint8_t level = to_byte(grey_level(image.pixels[i]));
    uint8_t* out = rgba.data() + i * 4;
    out[0] = out[1] = out[2] = level;
    out[3] = 255;
  }
  return rgba;
}

GrayImage fit_for_display(const GrayImage& crop, int max_side) {
  const int longer = std::max(crop.width, crop.height);
  if (max_side <= 0 || longer <= max_side) return crop;
  const auto scaled = [&](int side) { return std::max(1, static_cast<int>(std::lround(static_cast<double>(side) * max_side / longer))); };
  return resize(crop, scaled(crop.width), scaled(crop.height));
}

}  // namespace oac
