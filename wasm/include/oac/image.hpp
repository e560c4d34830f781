#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "oac/result.hpp"

namespace oac {

// What a file's header says about the acquisition beyond its pixels (DICOM files only).
struct ImageMetadata {
  // Millimetres between pixel centres: [0] between rows, [1] between columns. From Pixel
  // Spacing, else Imager Pixel Spacing (measured at the detector), which is all that many
  // projection radiographs carry.
  std::optional<std::array<double, 2>> pixel_spacing_mm;
  // "L", "R", "B" (both) or "U" (unpaired) from Image Laterality, else Laterality; "" if absent.
  std::string laterality;
  // True for DICOM, whose photometric interpretation says which way is bright; other formats
  // carry no such fact, so the core judges their polarity from the picture.
  bool polarity_from_header = false;
  // A DICOM's Number of Frames: the core decodes frame 1 only, and callers say so when there are more.
  int frames = 1;
};

// A decoded file as stored: `bit_depth` is 8 or 16, samples are interleaved
// (row-major, `channels` per pixel: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) and hold
// 0..255 or 0..65535 according to `bit_depth`.
struct RawImage {
  int width = 0;
  int height = 0;
  int channels = 0;
  int bit_depth = 0;
  std::vector<uint16_t> samples;
  ImageMetadata metadata;
};

// Single-channel float image, row-major.
struct GrayImage {
  int width = 0;
  int height = 0;
  std::vector<float> pixels;
};

// Upper bounds checked against the file size and the header's declared dimensions
// before any pixel memory is allocated, so hostile files cannot exhaust memory.
struct Limits {
  uint64_t max_pixels = 64'000'000;
  uint64_t max_bytes = 100'000'000;
};

// PNG (1-16 bit grey, grey+alpha, RGB, RGBA, palette), JPEG (baseline, progressive), BMP,
// DICOM (oac/dicom.hpp).
Result<RawImage> decode(const uint8_t* data, size_t size, const Limits& limits = {});

// The file-size rule decode applies first (empty, over max_bytes); bindings call it before
// copying a file into memory they allocate.
std::optional<Error> check_file_size(uint64_t size, const Limits& limits = {});

}  // namespace oac
