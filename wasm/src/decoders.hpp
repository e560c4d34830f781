#pragma once
// Format-specific decoders behind oac::decode, which has already checked that the
// input is non-empty and within the byte limit.

#include <cstddef>
#include <cstdint>
#include <string>

#include "oac/image.hpp"

namespace oac::detail {

// PNG, JPEG and BMP through stb_image.
Result<RawImage> decode_with_stb(const uint8_t* data, size_t size, const Limits& limits);

// "2.5 MB", "12.0 kB", "300 bytes".
std::string describe_bytes(uint64_t bytes);

}  // namespace oac::detail
