#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "oac/image.hpp"
#include "oac/localise.hpp"
#include "oac/model_card.hpp"
#include "oac/result.hpp"

namespace oac {

// One knee: `side` is "left" or "right" (half of the image as displayed) when the image shows two
// knees, otherwise "single"; `patient_side` is "L" or "R" where a DICOM header says which knee a
// one-knee film shows, else "". `box` is where the crop lies, in pixels of the decoded image;
// `image` is the square canonical crop in [0,1]; `inverted` tells that the picture was a negative
// (bone dark) and was turned back before cropping.
struct Knee {
  std::string side;
  std::string patient_side;
  Box box;
  GrayImage image;
  bool inverted = false;
};

// The message for an image in which no knee joint was found.
extern const char* const kNoKneeFound;

// How much a picture looks like a photograph or noise rather than a radiograph, which is grey and
// smooth at the scale of bone. `colour`: the mean spread between a pixel's red, green and blue, as
// a fraction of full scale (0 for grey). `roughness`: the mean difference between neighbouring
// pixels over the standard deviation, on the windowed picture shrunk to 128 x 128; white noise
// scores about 1.1, the training radiographs at most about 0.16.
struct PictureMeasures {
  double colour = 0;
  double roughness = 0;
};

// The measures of a decoded picture, windowed as window_image does.
Result<PictureMeasures> measure_picture(const RawImage& image, const PreprocessSpec& spec);

// The whole picture on the model's scale: luminance, percentile window to [0,1]. A picture that is
// not a radiograph (spec.radiograph) is refused here, before any knee is looked for.
Result<GrayImage> window_image(const RawImage& image, const PreprocessSpec& spec);

// The knees of a windowed picture. An image framed like the training data (a joint crop, or a
// strip of two) is cropped as they were; in a whole radiograph the knee joints are localised
// (oac/localise.hpp) and each is cropped and windowed on its own. Empty when no joint is found.
// A negative (bone dark) that is not DICOM is turned back in place first, and its knees say so.
std::vector<Knee> find_knees(GrayImage& windowed, const ImageMetadata& metadata, const PreprocessSpec& spec);

// The knee in `box` (made square and moved inside the image with square_inside), windowed on its
// own pixels: a box a person drew, or one localisation found.
Knee knee_in_box(const GrayImage& windowed, const Box& box, std::string side, const PreprocessSpec& spec);

// window_image + find_knees; no knee is an error (kNoKneeFound).
Result<std::vector<Knee>> canonicalise(const RawImage& image, const PreprocessSpec& spec);

// Antialiased separable triangle filter; matches PIL's Image.resize(BILINEAR) on mode "F".
// `width` and `height` must be positive and `image` non-empty.
GrayImage resize(const GrayImage& image, int width, int height);

// 3 * S * S floats (NCHW without the batch axis), S = spec.input_size.
std::vector<float> to_tensor(const GrayImage& square_crop, const PreprocessSpec& spec);

// The input of the model card's known-answer self-test: localisation's knee template (the mean
// training crop) made a tensor like any crop. The core makes it from the card alone, so every
// runtime can check its arithmetic against the card's expected outputs before it scores a knee.
std::vector<float> self_test_tensor(const PreprocessSpec& spec);

struct PreparedKnee {
  std::string side;
  std::string patient_side;
  Box box;
  GrayImage crop;
  bool inverted = false;
  std::vector<float> tensor;
  ImageMetadata metadata;  // the whole file's, shared by both knees of a bilateral image
};

PreparedKnee prepare_knee(Knee knee, const ImageMetadata& metadata, const PreprocessSpec& spec);

// A decoded file with its knees ready for the model. `windowed` is the whole picture, kept so a
// box drawn by hand can be cropped from it (knee_in_box); `knees` is empty when none was found.
struct PreparedImage {
  GrayImage windowed;
  ImageMetadata metadata;
  std::vector<PreparedKnee> knees;
};

// window_image + find_knees + to_tensor of a decoded image.
Result<PreparedImage> prepare_decoded(const RawImage& raw, const PreprocessSpec& spec);

// decode + prepare_decoded.
Result<PreparedImage> prepare_image(const uint8_t* data, size_t size, const PreprocessSpec& spec,
                                    const Limits& limits = {});

// prepare_image for consumers that only want the knees; no knee is an error (kNoKneeFound).
Result<std::vector<PreparedKnee>> prepare(const uint8_t* data, size_t size, const PreprocessSpec& spec,
                                          const Limits& limits = {});

}  // namespace oac
