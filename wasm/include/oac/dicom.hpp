#pragma once
// DICOM Part 10 reader behind oac::decode. See wasm/DICOM.md for what it reads and why.

#include <cstddef>
#include <cstdint>

#include "oac/image.hpp"
#include "oac/result.hpp"

namespace oac {

// True for a "DICM" marker at offset 128, or, for files written without the 128-byte
// preamble, a first element in group 0002 (file meta) or 0008 (identifying) that parses.
bool looks_like_dicom(const uint8_t* data, size_t size);

// The first frame of the file's image as display-ready samples:
//  - MONOCHROME1/2: one channel; without a VOI window the stored values are kept, shifted
//    left to fill 8 or 16 bits (signed values offset to unsigned; MONOCHROME1 and a negative
//    rescale slope inverted); with a window (center/width, in rescaled units) the window is
//    applied and the result has 16 bits;
//  - RGB: three channels, 8 or 16 bits.
// Pixel Spacing and Laterality go into `metadata`. Every length is checked against `size`;
// unsupported transfer syntaxes and damaged files return an Error naming the problem.
Result<RawImage> decode_dicom(const uint8_t* data, size_t size, const Limits& limits = {});

}  // namespace oac
