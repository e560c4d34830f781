#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "oac/localise.hpp"
#include "oac/preprocess.hpp"

namespace oac {
namespace {

GrayImage crop(const GrayImage& image, const Box& box) {
  const int width = box.width();
  GrayImage out{width, box.height(), std::vector<float>(static_cast<size_t>(width) * box.height())};
  for (int y = 0; y < box.height(); ++y) {
    const float* row = image.pixels.data() + static_cast<size_t>(box.y0 + y) * image.width + box.x0;
    std::copy(row, row + width, out.pixels.begin() + static_cast<ptrdiff_t>(y) * width);
  }
  return out;
}

// A crop that keeps every pixel moves the image instead: copying a 2048-px film costs more than
// the rest of its canonicalisation.
GrayImage crop_or_keep(const GrayImage& image, const Box& box) {
  if (box == Box{0, 0, image.width, image.height}) return image;
  return crop(image, box);
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

// The values at sorted positions `ranks` of non-negative floats, exactly as sorting would place them:
// such floats order as their bit patterns do, so a histogram of the upper 16 bits finds each value's
// bucket and one of the lower 16 bits within that bucket its value. Three passes, no copy: selection
// on a copy of a colour film's 20 megapixels took most of its windowing.
std::array<float, 2> float_values_at_ranks(const std::vector<float>& values, const std::array<size_t, 2>& ranks) {
  const auto bits_of = [](float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
  };
  std::vector<uint32_t> upper(65536, 0);
  for (const float value : values) ++upper[bits_of(value) >> 16];
  std::array<float, 2> found{};
  for (size_t r = 0; r < ranks.size(); ++r) {
    size_t below = 0;  // values in buckets under `bucket`
    uint32_t bucket = 0;
    while (below + upper[bucket] <= ranks[r]) below += upper[bucket++];
    std::vector<uint32_t> lower(65536, 0);
    for (const float value : values) {
      const uint32_t bits = bits_of(value);
      if ((bits >> 16) == bucket) ++lower[bits & 0xffffu];
    }
    uint32_t low = 0;
    for (size_t seen = below; seen + lower[low] <= ranks[r]; seen += lower[low++]) {
    }
    const uint32_t bits = (bucket << 16) | low;
    std::memcpy(&found[r], &bits, sizeof bits);
  }
  return found;
}

// The luminance values at sorted positions low_rank <= high_rank. Grey sources hold integer levels
// (0..65535), so one histogram pass finds them; colour sources are selected by their float bits.
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
  return float_values_at_ranks(luma.pixels, {low_rank, high_rank});
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
// loses at most max_fraction of its dimension. The region of `within` that remains.
Box content_region(const GrayImage& image, const Box& within, double tolerance_value, double max_fraction) {
  const float tolerance = static_cast<float>(tolerance_value);
  const int width = within.width();
  const int height = within.height();
  const int max_rows = static_cast<int>(max_fraction * height);
  const int max_columns = static_cast<int>(max_fraction * width);
  const ptrdiff_t stride = image.width;
  const float* origin = image.pixels.data() + static_cast<ptrdiff_t>(within.y0) * stride + within.x0;
  auto row_is_border = [&](int y) { return is_border_line(origin + y * stride, width, 1, tolerance); };
  int top = 0;
  while (top < max_rows && row_is_border(top)) ++top;
  int bottom = height;
  while (height - bottom < max_rows && row_is_border(bottom - 1)) --bottom;

  auto column_is_border = [&](int x) { return is_border_line(origin + top * stride + x, bottom - top, stride, tolerance); };
  int left = 0;
  while (left < max_columns && column_is_border(left)) ++left;
  int right = width;
  while (width - right < max_columns && column_is_border(right - 1)) --right;
  return {within.x0 + left, within.y0 + top, within.x0 + right, within.y0 + bottom};
}

// The darkest column (lowest sum; leftmost on ties) within the middle third of `region`.
int darkest_middle_column(const GrayImage& image, const Box& region) {
  const int first = region.x0 + region.width() / 3;
  const int last = region.x1 - region.width() / 3;
  std::vector<double> sums(static_cast<size_t>(last - first), 0.0);
  for (int y = region.y0; y < region.y1; ++y) {
    const float* row = image.pixels.data() + static_cast<size_t>(y) * image.width;
    for (int x = first; x < last; ++x) sums[static_cast<size_t>(x - first)] += row[x];
  }
  return first + static_cast<int>(std::min_element(sums.begin(), sums.end()) - sums.begin());
}

// The largest centred square; an odd margin leaves the extra pixel on the right/bottom.
Box centre_square(const Box& region) {
  const int side = std::min(region.width(), region.height());
  const int left = region.x0 + (region.width() - side) / 2;
  const int top = region.y0 + (region.height() - side) / 2;
  return {left, top, left + side, top + side};
}

// Maps the crop's own low and high percentiles to 0 and 1, as every training crop was windowed
// on its own pixels; a flat crop stays as it is.
void window_in_place(GrayImage& crop, const std::array<double, 2>& percentiles) {
  const size_t count = crop.pixels.size();
  const size_t low_rank = std::min(percentile_rank(percentiles[0], count), percentile_rank(percentiles[1], count));
  const size_t high_rank = std::max(percentile_rank(percentiles[0], count), percentile_rank(percentiles[1], count));
  const auto [low, high] = float_values_at_ranks(crop.pixels, {low_rank, high_rank});
  if (!(high > low)) return;
  const float range = high - low;
  for (float& value : crop.pixels) value = std::clamp((value - low) / range, 0.0f, 1.0f);
}

// A joint crop, or a strip of two, is framed already: it is cropped as the training crops were.
std::vector<Knee> framed_knees(const GrayImage& image, const Box& content, const PreprocessSpec& spec) {
  const bool bilateral =
      content.width() >= 3 && static_cast<double>(content.width()) / content.height() >= spec.bilateral_min_aspect;
  if (!bilateral) {
    const Box square = centre_square(content);
    return {{"single", "", square, crop_or_keep(image, square)}};
  }
  // The darkest column is the gap between the knees and belongs to neither. The split makes
  // new edges, so each half loses its share of a black gap like any other border; otherwise
  // the gap would shift that knee's centre crop away from how the knee crops on its own.
  const int gap = darkest_middle_column(image, content);
  const auto framed_half = [&](const char* side, int x0, int x1) {
    const Box square = centre_square(
        content_region(image, {x0, content.y0, x1, content.y1}, spec.border_tolerance, spec.border_max_fraction));
    return Knee{side, "", square, crop(image, square)};
  };
  return {framed_half("left", content.x0, gap), framed_half("right", gap + 1, content.x1)};
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

const char* const kNoKneeFound =
    "No knee joint was found in this image. It needs a front (AP or PA) view of one or both knees; "
    "if the knee is there, draw its box by hand.";

namespace {

double mean_colour_spread(const RawImage& image) {
  if (image.channels < 3) return 0.0;
  const size_t pixel_count = static_cast<size_t>(image.width) * image.height;
  double spread = 0;
  for (size_t i = 0; i < pixel_count; ++i) {
    const uint16_t* pixel = image.samples.data() + i * image.channels;
    spread += std::max({pixel[0], pixel[1], pixel[2]}) - std::min({pixel[0], pixel[1], pixel[2]});
  }
  const double full_scale = static_cast<double>((1u << std::clamp(image.bit_depth, 1, 16)) - 1u);
  return spread / static_cast<double>(pixel_count) / full_scale;
}

// Shrunk to a fixed size first, so a film's grain, which its resolution sets, counts for nothing:
// what remains of a radiograph is smooth bone and soft tissue, while noise stays noise.
double roughness(const GrayImage& windowed) {
  constexpr int kSide = 128;
  const GrayImage small = resize(windowed, kSide, kSide);
  double sum = 0, squares = 0, steps = 0;
  for (const float value : small.pixels) {
    sum += value;
    squares += static_cast<double>(value) * value;
  }
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
      const float here = small.pixels[static_cast<size_t>(y) * kSide + x];
      if (x + 1 < kSide) steps += std::fabs(small.pixels[static_cast<size_t>(y) * kSide + x + 1] - here);
      if (y + 1 < kSide) steps += std::fabs(small.pixels[static_cast<size_t>(y + 1) * kSide + x] - here);
    }
  }
  const double count = static_cast<double>(kSide) * kSide;
  const double deviation = std::sqrt(std::max(squares / count - (sum / count) * (sum / count), 0.0));
  const double mean_step = steps / (2.0 * kSide * (kSide - 1));
  return deviation > 0 ? mean_step / deviation : 0.0;
}

PictureMeasures measures_of(const RawImage& raw, const GrayImage& windowed) {
  return {mean_colour_spread(raw), roughness(windowed)};
}

Result<GrayImage> checked_window(const RawImage& raw, const PreprocessSpec& spec) {
  if (auto problem = check_raw_image(raw)) return *problem;
  return window(raw, spec.window_percentiles);
}

}  // namespace

Result<PictureMeasures> measure_picture(const RawImage& raw, const PreprocessSpec& spec) {
  Result<GrayImage> windowed = checked_window(raw, spec);
  if (!windowed) return windowed.error();
  return measures_of(raw, windowed.value());
}

Result<GrayImage> window_image(const RawImage& raw, const PreprocessSpec& spec) {
  Result<GrayImage> windowed = checked_window(raw, spec);
  if (!windowed) return windowed;
  const PictureMeasures measures = measures_of(raw, windowed.value());
  if (measures.colour > spec.radiograph.max_colour) {
    return Error{"This picture is in colour, and an X-ray is grey: it looks like a photograph, not a radiograph. "
                 "Open the X-ray image itself (PNG, JPEG, BMP or DICOM)."};
  }
  if (measures.roughness > spec.radiograph.max_roughness) {
    return Error{"This picture is fine grain or noise throughout, without the smooth shapes of bone an X-ray "
                 "shows. Open the X-ray image itself (PNG, JPEG, BMP or DICOM)."};
  }
  return windowed;
}

namespace {

// The knees as the picture shows them: framed as it is, or localised.
std::vector<Knee> knees_as_shown(const GrayImage& image, const PreprocessSpec& spec) {
  const Box content =
      content_region(image, {0, 0, image.width, image.height}, spec.border_tolerance, spec.border_max_fraction);
  // A strip of two knees, or a picture too small to hold a knee of min_knee_pixels with the
  // surroundings a whole film has, can only be framed already (every dataset crop is).
  const LocaliseSpec& localise = spec.localise;
  const bool strip = static_cast<double>(content.width()) / content.height() >= spec.bilateral_min_aspect;
  const bool small = std::min(content.width(), content.height()) * localise.joint_crop_fraction < localise.min_knee_pixels;
  const GrayImage film = crop_or_keep(image, content);
  const std::vector<KneeCandidate> candidates =
      strip || small ? std::vector<KneeCandidate>{} : knee_candidates(film, localise);
  // Nothing searched, or one clear knee filling the frame: a joint crop, at any resolution.
  const bool framed = candidates.empty() ||
                      (candidates.front().score >= localise.min_score &&
                       candidates.front().box.width() >= localise.joint_crop_fraction * std::min(film.width, film.height));
  if (framed) return framed_knees(image, content, spec);
  std::vector<Knee> knees;
  const std::vector<KneeCandidate> found = pick_knees(candidates, localise);
  for (const KneeCandidate& joint : found) {
    const Box box{joint.box.x0 + content.x0, joint.box.y0 + content.y0, joint.box.x1 + content.x0,
                  joint.box.y1 + content.y0};
    const char* side = found.size() == 1 ? "single" : (&joint == &found.front() ? "left" : "right");
    knees.push_back(knee_in_box(image, box, side, spec));
  }
  return knees;
}

GrayImage negative_of(const GrayImage& image) {
  GrayImage negative = image;
  for (float& value : negative.pixels) value = 1.0f - value;
  return negative;
}

}  // namespace

std::vector<Knee> find_knees(GrayImage& image, const ImageMetadata& metadata, const PreprocessSpec& spec) {
  std::vector<Knee> knees = knees_as_shown(image, spec);
  // Bone is bright. A negative (exported inverted, or scanned from a print) shows its joint crops
  // against the template's sign, or hides a whole film's knees until it is turned back.
  if (!metadata.polarity_from_header) {
    const LocaliseSpec::PolarityRule& rule = spec.localise.polarity;
    const bool reversed = !knees.empty() && std::all_of(knees.begin(), knees.end(), [&](const Knee& knee) {
      return upright_score(polarity_measures(knee.image, spec.localise), rule) <= -rule.threshold;
    });
    if (reversed || knees.empty()) {
      GrayImage negative = negative_of(image);
      std::vector<Knee> turned = knees_as_shown(negative, spec);
      if (!turned.empty()) {
        image = std::move(negative);
        knees = std::move(turned);
        for (Knee& knee : knees) knee.inverted = true;
      }
    }
  }
  // A header's laterality names the patient's side only for a film of one knee.
  if (knees.size() == 1 && (metadata.laterality == "L" || metadata.laterality == "R")) {
    knees.front().patient_side = metadata.laterality;
  }
  return knees;
}

Knee knee_in_box(const GrayImage& image, const Box& box, std::string side, const PreprocessSpec& spec) {
  const Box square = square_inside(box, image.width, image.height);
  Knee knee{std::move(side), "", square, crop(image, square)};
  window_in_place(knee.image, spec.window_percentiles);
  return knee;
}

Result<std::vector<Knee>> canonicalise(const RawImage& raw, const PreprocessSpec& spec) {
  Result<GrayImage> windowed = window_image(raw, spec);
  if (!windowed) return windowed.error();
  std::vector<Knee> knees = find_knees(windowed.value(), raw.metadata, spec);
  if (knees.empty()) return Error{kNoKneeFound};
  return knees;
}

}  // namespace oac
