#include <cstdio>

#include "decoders.hpp"
#include "oac/dicom.hpp"
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

Error no_pixels() { return Error{"The image has no pixels: its header declares a width or height of 0."}; }

Error too_many_pixels(uint64_t width, uint64_t height, const Limits& limits) {
  const double megapixels = static_cast<double>(width) * static_cast<double>(height) / 1e6;
  char text[320];
  std::snprintf(text, sizeof text,
                "The image declares %llu x %llu pixels (%.1f megapixels), more than the limit of %.1f megapixels; "
                "the file is probably corrupt or a decompression bomb.",
                static_cast<unsigned long long>(width), static_cast<unsigned long long>(height), megapixels,
                static_cast<double>(limits.max_pixels) / 1e6);
  return Error{text};
}

}  // namespace detail

std::optional<Error> check_file_size(uint64_t size, const Limits& limits) {
  if (size == 0) return Error{"The file is empty."};
  if (size > limits.max_bytes) {
    return Error{"The file is too large (" + detail::describe_bytes(size) + "; the limit is " +
                 detail::describe_bytes(limits.max_bytes) + ")."};
  }
  return std::nullopt;
}

Result<RawImage> decode(const uint8_t* data, size_t size, const Limits& limits) {
  if (data == nullptr) return Error{"The file is empty."};
  if (auto problem = check_file_size(size, limits)) return *problem;
  if (looks_like_dicom(data, size)) return decode_dicom(data, size, limits);
  return detail::decode_with_stb(data, size, limits);
}

}  // namespace oac
