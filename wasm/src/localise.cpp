#include "oac/localise.hpp"

#include <algorithm>
#include <cmath>

#include "oac/preprocess.hpp"

namespace oac {
namespace {

// The joint space and the outlines of the condyles and the tibial plateau are horizontal edges;
// vertical edges (shafts, skin, film borders) run the whole length of a leg, so they count half.
constexpr double kAcrossWeight = 0.5;
// Best matches kept per box size before the sizes are compared with each other.
constexpr int kPeaksPerScale = 4;
// Every box size is first scored on a lattice of every second position, each row and column, and only
// its best matches are refined among their neighbours: a knee spans the whole template, so its match
// falls off over many positions and a lattice point beside the peak is near the best.
constexpr int kLatticeStep = 2;

// Forward differences down the rows and across the columns; the last row (column) has none.
struct Gradients {
  int width = 0;
  int height = 0;
  std::vector<float> down;
  std::vector<float> across;
};

Gradients gradients(const GrayImage& image) {
  const int w = image.width;
  const int h = image.height;
  Gradients out{w, h, std::vector<float>(image.pixels.size(), 0.0f), std::vector<float>(image.pixels.size(), 0.0f)};
  for (int y = 0; y < h; ++y) {
    const float* row = image.pixels.data() + static_cast<size_t>(y) * w;
    float* down = out.down.data() + static_cast<size_t>(y) * w;
    float* across = out.across.data() + static_cast<size_t>(y) * w;
    if (y + 1 < h) {
      for (int x = 0; x < w; ++x) down[x] = row[x + w] - row[x];
    }
    for (int x = 0; x + 1 < w; ++x) across[x] = row[x + 1] - row[x];
  }
  return out;
}

// Zero mean, unit norm: a template's dot product with any window is then that window's
// correlation with it, up to the window's own norm.
void standardise(std::vector<float>& values) {
  double mean = 0;
  for (float v : values) mean += v;
  mean /= static_cast<double>(values.size());
  double norm = 0;
  for (float& v : values) {
    v = static_cast<float>(v - mean);
    norm += static_cast<double>(v) * v;
  }
  const double scale = norm > 0 ? 1.0 / std::sqrt(norm) : 0.0;
  for (float& v : values) v = static_cast<float>(v * scale);
}

// Sums of values and of squares over any rectangle in constant time.
class WindowMoments {
 public:
  explicit WindowMoments(const std::vector<float>& values, int width, int height)
      : stride_(width + 1), sum_(static_cast<size_t>(stride_) * (height + 1), 0.0),
        squares_(sum_.size(), 0.0) {
    for (int y = 0; y < height; ++y) {
      double row_sum = 0;
      double row_squares = 0;
      for (int x = 0; x < width; ++x) {
        const double v = values[static_cast<size_t>(y) * width + x];
        row_sum += v;
        row_squares += v * v;
        sum_[at(x + 1, y + 1)] = sum_[at(x + 1, y)] + row_sum;
        squares_[at(x + 1, y + 1)] = squares_[at(x + 1, y)] + row_squares;
      }
    }
  }

  // Spread of the size x size window at (x, y): its norm after removing its mean.
  double centred_norm(int x, int y, int size) const {
    const double n = static_cast<double>(size) * size;
    const double sum = rectangle(sum_, x, y, size);
    const double spread = rectangle(squares_, x, y, size) - sum * sum / n;
    return spread > 0 ? std::sqrt(spread) : 0.0;
  }

 private:
  size_t at(int x, int y) const { return static_cast<size_t>(y) * stride_ + x; }
  double rectangle(const std::vector<double>& table, int x, int y, int size) const {
    return table[at(x + size, y + size)] - table[at(x, y + size)] - table[at(x + size, y)] + table[at(x, y)];
  }

  int stride_;
  std::vector<double> sum_;
  std::vector<double> squares_;
};

// Independent partial sums, so that the compiler keeps them in one SIMD register (WebAssembly SIMD, SSE):
// a single running sum would fix the order of the additions and forbid that.
constexpr int kDotLanes = 8;

double dot_window(const std::vector<float>& values, int width, int x, int y, const std::vector<float>& kernel,
                  int size) {
  float lanes[kDotLanes] = {};
  float rest = 0;
  const int whole = size - size % kDotLanes;
  for (int row = 0; row < size; ++row) {
    const float* image_row = values.data() + static_cast<size_t>(y + row) * width + x;
    const float* kernel_row = kernel.data() + static_cast<size_t>(row) * size;
    for (int col = 0; col < whole; col += kDotLanes) {
      for (int lane = 0; lane < kDotLanes; ++lane) lanes[lane] += image_row[col + lane] * kernel_row[col + lane];
    }
    for (int col = whole; col < size; ++col) rest += image_row[col] * kernel_row[col];
  }
  double total = rest;
  for (float lane : lanes) total += lane;
  return total;
}

// Normalised correlation of the template's gradients with any window of the image's.
class GradientMatcher {
 public:
  GradientMatcher(Gradients image, Gradients knee, int size)
      : image_(std::move(image)), knee_(std::move(knee)), size_(size), down_moments_(image_.down, image_.width, image_.height),
        across_moments_(image_.across, image_.width, image_.height) {}

  int positions_x() const { return image_.width - size_ + 1; }
  int positions_y() const { return image_.height - size_ + 1; }

  float score(int x, int y) const {
    const double down_norm = down_moments_.centred_norm(x, y, size_);
    const double across_norm = across_moments_.centred_norm(x, y, size_);
    const double down = down_norm > 0 ? dot_window(image_.down, image_.width, x, y, knee_.down, size_) / down_norm : 0;
    const double across =
        across_norm > 0 ? dot_window(image_.across, image_.width, x, y, knee_.across, size_) / across_norm : 0;
    return static_cast<float>((down + kAcrossWeight * across) / (1.0 + kAcrossWeight));
  }

 private:
  Gradients image_;
  Gradients knee_;
  int size_;
  WindowMoments down_moments_;
  WindowMoments across_moments_;
};

bool overlapping(const Box& a, const Box& b) {
  const double reach = 0.5 * std::max(a.width(), b.width());
  return std::fabs((a.x0 + a.x1) - (b.x0 + b.x1)) / 2.0 < reach && std::fabs((a.y0 + a.y1) - (b.y0 + b.y1)) / 2.0 < reach;
}

Gradients template_gradients(const LocaliseSpec& spec) {
  const int size = spec.template_size;
  Gradients knee = gradients(GrayImage{size, size, spec.knee_template});
  standardise(knee.down);
  standardise(knee.across);
  return knee;
}

}  // namespace

std::vector<KneeCandidate> knee_candidates(const GrayImage& image, const LocaliseSpec& spec) {
  const int size = spec.template_size;
  const int shorter = std::min(image.width, image.height);
  const int longer = std::max(image.width, image.height);
  if (size < 2 || shorter < std::max(size, spec.min_knee_pixels) ||
      spec.knee_template.size() != static_cast<size_t>(size) * size) {
    return {};
  }

  // Every box size is searched on one working copy small enough that the smallest knee spans the
  // template: the film is downscaled once, each size then only a little more.
  const double working_scale = std::min(1.0, size / (spec.smallest_knee * longer));
  const GrayImage working = working_scale < 1.0
                                ? resize(image, std::max(size, static_cast<int>(std::lround(image.width * working_scale))),
                                         std::max(size, static_cast<int>(std::lround(image.height * working_scale))))
                                : image;
  const double smallest_side = std::max({spec.smallest_knee * longer, static_cast<double>(spec.min_knee_pixels),
                                         size * static_cast<double>(image.width) / working.width});
  const double largest_side = shorter;
  const int steps = smallest_side < largest_side ? std::max(1, spec.scale_steps) : 1;
  const Gradients knee = template_gradients(spec);

  std::vector<KneeCandidate> found;
  for (int step = 0; step < steps; ++step) {
    const double side = steps == 1 ? std::min(smallest_side, largest_side)
                                   : smallest_side * std::pow(largest_side / smallest_side, step / (steps - 1.0));
    const double factor = size / side;  // image pixels -> searched pixels
    const int w = std::max(size, static_cast<int>(std::lround(image.width * factor)));
    const int h = std::max(size, static_cast<int>(std::lround(image.height * factor)));
    const GrayImage scaled = (w == working.width && h == working.height) ? working : resize(working, w, h);
    const GradientMatcher matcher(gradients(scaled), knee, size);
    const int lattice_x = (matcher.positions_x() + kLatticeStep - 1) / kLatticeStep;
    const int lattice_y = (matcher.positions_y() + kLatticeStep - 1) / kLatticeStep;
    std::vector<float> scores(static_cast<size_t>(lattice_x) * lattice_y);
    for (int ly = 0; ly < lattice_y; ++ly) {
      for (int lx = 0; lx < lattice_x; ++lx) {
        scores[static_cast<size_t>(ly) * lattice_x + lx] = matcher.score(lx * kLatticeStep, ly * kLatticeStep);
      }
    }
    const double to_image_x = static_cast<double>(image.width) / w;
    const double to_image_y = static_cast<double>(image.height) / h;
    for (int peak = 0; peak < kPeaksPerScale; ++peak) {
      const auto best = std::max_element(scores.begin(), scores.end());
      if (*best <= -1.0f) break;
      const int index = static_cast<int>(best - scores.begin());
      const int lattice_point_x = (index % lattice_x) * kLatticeStep;
      const int lattice_point_y = (index / lattice_x) * kLatticeStep;
      int x = lattice_point_x;
      int y = lattice_point_y;
      float score = *best;
      for (int yy = std::max(0, lattice_point_y - kLatticeStep + 1);
           yy < std::min(matcher.positions_y(), lattice_point_y + kLatticeStep); ++yy) {
        for (int xx = std::max(0, lattice_point_x - kLatticeStep + 1);
             xx < std::min(matcher.positions_x(), lattice_point_x + kLatticeStep); ++xx) {
          const float neighbour = matcher.score(xx, yy);
          if (neighbour > score) {
            score = neighbour;
            x = xx;
            y = yy;
          }
        }
      }
      const Box box{static_cast<int>(std::lround(x * to_image_x)), static_cast<int>(std::lround(y * to_image_y)),
                    static_cast<int>(std::lround((x + size) * to_image_x)),
                    static_cast<int>(std::lround((y + size) * to_image_y))};
      found.push_back({square_inside(box, image.width, image.height), score});
      // Neighbouring positions describe the same match.
      const auto first_near = [size](int position) { return std::max(0, (position - size / 2 + kLatticeStep - 1) / kLatticeStep); };
      for (int ly = first_near(y); ly < lattice_y && ly * kLatticeStep <= y + size / 2; ++ly) {
        for (int lx = first_near(x); lx < lattice_x && lx * kLatticeStep <= x + size / 2; ++lx) {
          scores[static_cast<size_t>(ly) * lattice_x + lx] = -1.0f;
        }
      }
    }
  }

  std::stable_sort(found.begin(), found.end(), [](const KneeCandidate& a, const KneeCandidate& b) { return a.score > b.score; });
  std::vector<KneeCandidate> distinct;
  for (const KneeCandidate& candidate : found) {
    const bool seen = std::any_of(distinct.begin(), distinct.end(),
                                  [&](const KneeCandidate& kept) { return overlapping(kept.box, candidate.box); });
    if (!seen) distinct.push_back(candidate);
  }
  return distinct;
}

std::vector<KneeCandidate> pick_knees(const std::vector<KneeCandidate>& candidates, const LocaliseSpec& spec) {
  if (candidates.empty() || candidates.front().score < spec.min_score) return {};
  const KneeCandidate& first = candidates.front();
  std::vector<KneeCandidate> knees{first};
  for (size_t i = 1; i < candidates.size(); ++i) {
    const KneeCandidate& other = candidates[i];
    if (other.score < spec.pair_min_score) break;
    const double mean_side = 0.5 * (first.box.width() + other.box.width());
    const double size_ratio = static_cast<double>(other.box.width()) / first.box.width();
    const double apart = std::fabs((other.box.x0 + other.box.x1) - (first.box.x0 + first.box.x1)) / 2.0;
    const double level = std::fabs((other.box.y0 + other.box.y1) - (first.box.y0 + first.box.y1)) / 2.0;
    // Two knees on one film stand side by side, at about one height and one size.
    if (size_ratio > 0.6 && size_ratio < 1.0 / 0.6 && apart >= 0.75 * mean_side && level <= 0.5 * mean_side) {
      knees.push_back(other);
      break;
    }
  }
  std::sort(knees.begin(), knees.end(), [](const KneeCandidate& a, const KneeCandidate& b) { return a.box.x0 < b.box.x0; });
  return knees;
}

namespace {

// `small` is the picture already shrunk to template_size x template_size.
float frame_match_of_small(const GrayImage& small, const LocaliseSpec& spec) {
  return GradientMatcher(gradients(small), template_gradients(spec), spec.template_size).score(0, 0);
}

}  // namespace

float frame_match(const GrayImage& picture, const LocaliseSpec& spec) {
  const int size = spec.template_size;
  if (picture.width < 1 || picture.height < 1 || size < 2) return 0.0f;
  return frame_match_of_small(resize(picture, size, size), spec);
}

// Rows rather than the gradients localisation matches: the bright condyles and plateau around the
// dark joint space hold across every framing of the training data, their edges do not.
float brightness_profile_match(const GrayImage& picture, const LocaliseSpec& spec) {
  const int size = spec.template_size;
  if (picture.width < 1 || picture.height < 1 || size < 2) return 0.0f;
  std::vector<float> rows = resize(picture, 1, size).pixels;
  std::vector<float> template_rows(static_cast<size_t>(size), 0.0f);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) template_rows[static_cast<size_t>(y)] += spec.knee_template[static_cast<size_t>(y) * size + x];
  }
  standardise(rows);
  standardise(template_rows);
  double match = 0;
  for (int y = 0; y < size; ++y) match += static_cast<double>(rows[static_cast<size_t>(y)]) * template_rows[static_cast<size_t>(y)];
  return static_cast<float>(match);
}

PolarityMeasures polarity_measures(const GrayImage& crop, const LocaliseSpec& spec) {
  if (crop.width < 1 || crop.height < 1 || spec.template_size < 2) return {};
  // At the template's size, like the gradients: the film's resolution and grain count for nothing.
  // The one shrunk picture serves the gradients and the brightness.
  const GrayImage small = resize(crop, spec.template_size, spec.template_size);
  PolarityMeasures measures{brightness_profile_match(crop, spec), frame_match_of_small(small, spec), 0, 0};
  const std::vector<float>& pixels = small.pixels;
  double sum = 0;
  for (const float value : pixels) sum += value;
  const double mean = sum / static_cast<double>(pixels.size());
  double second = 0, third = 0;
  for (const float value : pixels) {
    const double deviation = value - mean;
    second += deviation * deviation;
    third += deviation * deviation * deviation;
  }
  second /= static_cast<double>(pixels.size());
  third /= static_cast<double>(pixels.size());
  measures.brightness = static_cast<float>(mean - 0.5);
  measures.skew = second > 1e-12 ? static_cast<float>(third / std::pow(second, 1.5)) : 0.0f;
  return measures;
}

double upright_score(const PolarityMeasures& measures, const LocaliseSpec::PolarityRule& rule) {
  return rule.profile * measures.profile + rule.frame * measures.frame + rule.brightness * measures.brightness +
         rule.skew * measures.skew;
}

Box square_inside(const Box& box, int width, int height, int min_side) {
  const int side = std::min({std::max({box.width(), box.height(), min_side}), width, height});
  if (side <= 0) return {};
  const auto place = [side](int low, int high, int limit) {
    const int start = static_cast<int>(std::floor((low + high - side) / 2.0));
    return std::clamp(start, 0, limit - side);
  };
  const int x0 = place(box.x0, box.x1, width);
  const int y0 = place(box.y0, box.y1, height);
  return {x0, y0, x0 + side, y0 + side};
}

Result<Box> square_hand_box(double x0, double y0, double x1, double y1, int width, int height) {
  if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) {
    return Error{"The box must be four numbers."};
  }
  if (width <= 0 || height <= 0) return Error{"A box needs an image with pixels to sit in."};
  // Halves round up, so that a box moved by a fraction of a pixel keeps its side wherever it lands.
  // An edge far outside any image is held where the int holds it; the square is moved inside anyway.
  const auto pixel = [](double edge) { return static_cast<int>(std::clamp(std::floor(edge + 0.5), -1e8, 1e8)); };
  const Box proposed{pixel(std::min(x0, x1)), pixel(std::min(y0, y1)), pixel(std::max(x0, x1)), pixel(std::max(y0, y1))};
  const int shorter = std::min(width, height);
  const int smallest = std::max(2, static_cast<int>(std::lround(shorter * kMinHandBoxFraction)));
  return square_inside(proposed, width, height, smallest);
}

}  // namespace oac
