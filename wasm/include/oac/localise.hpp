#pragma once
// Finding knee joints in a whole radiograph.

#include <vector>

#include "oac/image.hpp"
#include "oac/model_card.hpp"
#include "oac/result.hpp"

namespace oac {

// A rectangle of pixels, half-open: columns [x0, x1), rows [y0, y1).
struct Box {
  int x0 = 0;
  int y0 = 0;
  int x1 = 0;
  int y1 = 0;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
  bool operator==(const Box& other) const {
    return x0 == other.x0 && y0 == other.y0 && x1 == other.x1 && y1 == other.y1;
  }
};

struct KneeCandidate {
  Box box;      // square, framed like the training crops
  float score;  // template match in [-1, 1]
};

// Every place in `image` (windowed to [0,1]) that matches the card's knee template, best first,
// overlapping matches suppressed. Boxes are squares whose side runs from the spec's smallest knee
// (a fraction of the longer side, and at least min_knee_pixels) up to the shorter side. Empty when
// the image's shorter side is below min_knee_pixels: such an image can only be a joint crop.
std::vector<KneeCandidate> knee_candidates(const GrayImage& image, const LocaliseSpec& spec);

// The knees among the candidates: the best one if it scores at least min_score, and beside it a
// second of similar size at a similar height that scores at least pair_min_score (both knees of a
// bilateral film). Sorted left to right.
std::vector<KneeCandidate> pick_knees(const std::vector<KneeCandidate>& candidates, const LocaliseSpec& spec);

// How well the whole of `picture` (a joint crop, windowed) matches the knee template's gradients:
// near 1 for a crop framed like the training crops, negative for a negative of one.
float frame_match(const GrayImage& picture, const LocaliseSpec& spec);

// Correlation of the brightness of `picture`'s rows, top to bottom, with the knee template's: near
// 1 for a joint crop with bright bone around the dark joint space, near -1 for its negative.
float brightness_profile_match(const GrayImage& picture, const LocaliseSpec& spec);

// What tells an upright joint crop (bone bright) from its negative. Each changes sign, and no
// more, on the negative, so a rule weighing them judges a negative by its upright's measures.
struct PolarityMeasures {
  float profile = 0;     // brightness_profile_match
  float frame = 0;       // frame_match
  float brightness = 0;  // mean brightness - 0.5: bone and soft tissue fill most of a joint crop
  float skew = 0;        // skewness of the brightness: a few dark pixels (air, joint space) under a bright majority
};
PolarityMeasures polarity_measures(const GrayImage& crop, const LocaliseSpec& spec);

// The card's weighted sum of the measures: positive for an upright crop, the opposite for its negative.
double upright_score(const PolarityMeasures& measures, const LocaliseSpec::PolarityRule& rule);

// The square box of side max(width, height, min_side) with the same centre as `box`, moved inside a
// width x height image (and shrunk to its shorter side when larger). Empty box when the image is.
Box square_inside(const Box& box, int width, int height, int min_side = 0);

// The smallest side of a box a person sets, as a fraction of the image's shorter side: no knee is that
// small, and a smaller box would be hard to see and to take hold of again.
inline constexpr double kMinHandBoxFraction = 0.04;

// The one rule for a box a person proposes (columns [x0, x1), rows [y0, y1) in pixels of a width x height
// image, corners in either order), which the page draws and the core crops: the edges rounded to whole
// pixels, then square_inside with a side of at least kMinHandBoxFraction of the image's shorter side (and
// 2 pixels). The proposal may reach outside the image: the square is moved in.
// An error for an edge that is not a finite number or an image without pixels.
Result<Box> square_hand_box(double x0, double y0, double x1, double y1, int width, int height);

}  // namespace oac
