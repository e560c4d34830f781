#include <cstdio>

#include "decoders.hpp"
#include "oac/image.hpp"

namespace oac {

namespace detail {

std::string describe_bytes(uint64_t bytes) {
  char text[64];
  if (bytes < 1000) {
    std::snprintf(text, sizeof text, "%llu bytes", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1000 * 1000) {
    std::snprintf(text, sizeof text, "%.1f kB", static_cast<double>(bytes) / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  }
  return text;
}

}  // namespace detail

Result<RawImage> decode(const uint8_t* data, size_t size, const Limits& limits) {
  if (data == nullptr || size == 0) return Error{"The file is empty."};
  if (size > limits.max_bytes) {
    return Error{"The file is too large (" + detail::describe_bytes(size) + "; the limit is " +
                 detail::describe_bytes(limits.max_bytes) + ")."};
  }
  // DICOM (issue 6) will be recognised here by its "DICM" marker and get its own decoder.
  return detail::decode_with_stb(data, size, limits);
}

}  // namespace oac
