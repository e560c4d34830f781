#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "oac/image.hpp"
#include "oac/model_card.hpp"
#include "oac/result.hpp"

namespace oac {

// One knee: `side` is "left" or "right" (half of the image as displayed) for a
// bilateral radiograph, otherwise "single". `image` is the square canonical crop in [0,1].
struct Knee {
  std::string side;
  GrayImage image;
};

Result<std::vector<Knee>> canonicalise(const RawImage& image, const PreprocessSpec& spec);

// Antialiased separable triangle filter; matches PIL's Image.resize(BILINEAR) on mode "F".
// `width` and `height` must be positive and `image` non-empty.
GrayImage resize(const GrayImage& image, int width, int height);

// 3 * S * S floats (NCHW without the batch axis), S = spec.input_size.
std::vector<float> to_tensor(const GrayImage& square_crop, const PreprocessSpec& spec);

struct PreparedKnee {
  std::string side;
  GrayImage crop;
  std::vector<float> tensor;
  ImageMetadata metadata;  // the whole file's, shared by both knees of a bilateral image
};

// decode + canonicalise + to_tensor: what every consumer runs on a file.
Result<std::vector<PreparedKnee>> prepare(const uint8_t* data, size_t size, const PreprocessSpec& spec,
                                          const Limits& limits = {});

}  // namespace oac
