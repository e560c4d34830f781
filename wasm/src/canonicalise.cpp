#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "oac/preprocess.hpp"

namespace oac {
namespace {

GrayImage crop(const GrayImage& image, int left, int top, int width, int height) {
  GrayImage out{width, height, std::vector<float>(static_cast<size_t>(width) * height)};
  for (int y = 0; y < height; ++y) {
    const float* row = image.pixels.data() + static_cast<size_t>(top + y) * image.width + left;
    std::copy(row, row + width, out.pixels.begin() + static_cast<ptrdiff_t>(y) * width);
  }
  return out;
}

// A crop that keeps every pixel hands the image on: copying a 2048-px film costs more than the
// rest of its canonicalisation.
GrayImage crop_or_keep(GrayImage image, int left, int top, int width, int height) {
  if (left == 0 && top == 0 && width == image.width && height == image.height) return image;
  return crop(image, left, top, width, height);
}

// Rec. 601 luma in source units (0..255 or 0..65535). Double arithmetic keeps grey
// stored as RGB exactly grey; alpha is ignored because radiographs carry no meaning in it.
GrayImage luminance(const RawImage& image) {
  const size_t pixel_count = static_cast<size_t>(image.width) * image.height;
  GrayImage out{image.width, image.height, std::vector<float>(pixel_count)};
  const int channels = image.channels;
  const uint16_t* samples = image.samples.data();
  for (size_t i = 0; i < pixel_count; ++i) {
    const uint16_t* pixel = samples + i * channels;
    if (channels >= 3) {
      out.pixels[i] = static_cast<float>(0.299 * pixel[0] + 0.587 * pixel[1] + 0.114 * pixel[2]);
    } else {
      out.pixels[i] = static_cast<float>(pixel[0]);
    }
  }
  return out;
}

// Rank rule: the value at sorted index round(p / 100 * (n - 1)), halves rounded up.
size_t percentile_rank(double percentile, size_t count) {
  const double rank = std::floor(percentile / 100.0 * static_cast<double>(count - 1) + 0.5);
  return std::min(static_cast<size_t>(std::max(rank, 0.0)), count - 1);
}

// The luminance values at sorted positions low_rank <= high_rank. Grey sources hold integer levels
// (0..65535), so one histogram pass finds them; colour sources need selection on a copy.
std::array<float, 2> values_at_ranks(const RawImage& raw, const GrayImage& luma, size_t low_rank, size_t high_rank) {
  if (raw.channels < 3) {
    std::vector<uint32_t> histogram(65536, 0);
    const size_t pixel_count = luma.pixels.size();
    for (size_t i = 0; i < pixel_count; ++i) ++histogram[raw.samples[i * raw.channels]];
    std::array<float, 2> values{};
    size_t below = 0;  // samples with a level under `level`
    int found = 0;
    for (size_t level = 0; level < histogram.size() && found < 2; ++level) {
      below += histogram[level];
      while (found < 2 && (found == 0 ? low_rank : high_rank) < below) values[found++] = static_cast<float>(level);
    }
    return values;
  }
  std::vector<float> sorted = luma.pixels;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(high_rank), sorted.end());
  const float high = sorted[high_rank];
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(low_rank),
                   sorted.begin() + static_cast<ptrdiff_t>(high_rank) + 1);
  return {sorted[low_rank], high};
}

// Maps the low and high percentiles of the luminance to 0 and 1 (clamped), so 8-bit and 16-bit
// sources and differently exposed films land on the same scale.
Result<GrayImage> window(const RawImage& raw, const std::array<double, 2>& percentiles) {
  GrayImage image = luminance(raw);
  const size_t low_rank = percentile_rank(percentiles[0], image.pixels.size());
  const size_t high_rank = percentile_rank(percentiles[1], image.pixels.size());
  const auto [low, high] = values_at_ranks(raw, image, std::min(low_rank, high_rank), std::max(low_rank, high_rank));
  if (!(high > low)) return Error{"The image is blank: it has no contrast to show a knee."};
  const float range = high - low;
  for (float& value : image.pixels) value = std::clamp((value - low) / range, 0.0f, 1.0f);
  return image;
}

// A border line holds nothing but near-black and near-white values (within `tolerance`
// of 0 or 1): film edges, scanner frames, burnt-in padding, alone or side by side.
bool is_border_line(const float* first, int count, ptrdiff_t stride, float tolerance) {
  const float bright_floor = 1.0f - tolerance;
  for (int i = 0; i < count; ++i) {
    const float value = first[i * stride];
    if (value > tolerance && value < bright_floor) return false;
  }
  return true;
}

// Rows first (over the full width), then columns (over the remaining rows); each side
// loses at most max_fraction of its dimension.
GrayImage crop_uniform_borders(GrayImage image, double tolerance_value, double max_fraction) {
  const float tolerance = static_cast<float>(tolerance_value);
  const int max_rows = static_cast<int>(max_fraction * image.height);
  const int max_columns = static_cast<int>(max_fraction * image.width);
  const float* pixels = image.pixels.data();
  const ptrdiff_t stride = image.width;
  auto row_is_border = [&](int y) { return is_border_line(pixels + y * stride, image.width, 1, tolerance); };
  int top = 0;
  while (top < max_rows && row_is_border(top)) ++top;
  int bottom = image.height;
  while (image.height - bottom < max_rows && row_is_border(bottom - 1)) --bottom;

  auto column_is_border = [&](int x) { return is_border_line(pixels + top * stride + x, bottom - top, stride, tolerance); };
  int left = 0;
  while (left < max_columns && column_is_border(left)) ++left;
  int right = image.width;
  while (image.width - right < max_columns && column_is_border(right - 1)) --right;
  return crop_or_keep(std::move(image), left, top, right - left, bottom - top);
}

// The darkest column (lowest sum; leftmost on ties) within [width/3, width - width/3).
int darkest_middle_column(const GrayImage& image) {
  const int first = image.width / 3;
  const int last = image.width - image.width / 3;
  std::vector<double> sums(static_cast<size_t>(last - first), 0.0);
  for (int y = 0; y < image.height; ++y) {
    const float* row = image.pixels.data() + static_cast<size_t>(y) * image.width;
    for (int x = first; x < last; ++x) sums[static_cast<size_t>(x - first)] += row[x];
  }
  return first + static_cast<int>(std::min_element(sums.begin(), sums.end()) - sums.begin());
}

GrayImage centre_square(GrayImage image) {
  const int side = std::min(image.width, image.height);
  const int left = (image.width - side) / 2;
  const int top = (image.height - side) / 2;
  return crop_or_keep(std::move(image), left, top, side, side);
}

std::optional<Error> check_raw_image(const RawImage& image) {
  if (image.width <= 0 || image.height <= 0) return Error{"The image has no pixels."};
  if (image.channels < 1 || image.channels > 4) return Error{"The image must have 1 to 4 channels."};
  if (image.samples.size() != static_cast<size_t>(image.width) * image.height * image.channels) {
    return Error{"The image's sample count does not match its width, height and channels."};
  }
  return std::nullopt;
}

}  // namespace

Result<std::vector<Knee>> canonicalise(const RawImage& raw, const PreprocessSpec& spec) {
  if (auto problem = check_raw_image(raw)) return *problem;
  Result<GrayImage> windowed = window(raw, spec.window_percentiles);
  if (!windowed) return windowed.error();
  GrayImage image = crop_uniform_borders(std::move(windowed).value(), spec.border_tolerance, spec.border_max_fraction);

  std::vector<Knee> knees;
  const bool bilateral =
      image.width >= 3 && static_cast<double>(image.width) / image.height >= spec.bilateral_min_aspect;
  if (bilateral) {
    // The darkest column is the gap between the knees and belongs to neither. The split makes
    // new edges, so each half loses its share of a black gap like any other border; otherwise
    // the gap would shift that knee's centre crop away from how the knee crops on its own.
    const int gap = darkest_middle_column(image);
    const auto canonical_half = [&](int left, int width) {
      return centre_square(crop_uniform_borders(crop(image, left, 0, width, image.height), spec.border_tolerance,
                                                spec.border_max_fraction));
    };
    knees.push_back({"left", canonical_half(0, gap)});
    knees.push_back({"right", canonical_half(gap + 1, image.width - gap - 1)});
  } else {
    knees.push_back({"single", centre_square(std::move(image))});
  }
  return knees;
}

}  // namespace oac
