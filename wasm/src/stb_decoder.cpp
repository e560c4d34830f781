// stb_image behind the core's error and limit rules.
//
// Pixels are read through stb's callback interface rather than straight from memory
// because the callbacks reveal when stb asks for bytes past the end of the file: stb
// otherwise pads missing data with zeros and "succeeds" on truncated JPEG and BMP files.

#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
// stb's asserts would abort the process on hostile input; its own checks return errors.
#define STBI_ASSERT(condition) ((void)0)
#include <stb_image.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "decoders.hpp"

namespace oac::detail {
namespace {

enum class Format { png, jpeg, bmp, unknown };

Format sniff_format(const uint8_t* data, size_t size) {
  static constexpr uint8_t kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= sizeof kPng && std::memcmp(data, kPng, sizeof kPng) == 0) return Format::png;
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return Format::jpeg;
  if (size >= 2 && data[0] == 'B' && data[1] == 'M') return Format::bmp;
  return Format::unknown;
}

const char* format_name(Format format) {
  switch (format) {
    case Format::png: return "PNG";
    case Format::jpeg: return "JPEG";
    case Format::bmp: return "BMP";
    case Format::unknown: break;
  }
  return "image";
}

// A read-only cursor over the caller's bytes that records whether stb ran past the end.
class ByteStream {
 public:
  ByteStream(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  static const stbi_io_callbacks& callbacks() {
    static constexpr stbi_io_callbacks kCallbacks = {&ByteStream::read, &ByteStream::skip, &ByteStream::at_end};
    return kCallbacks;
  }

  // True when the file ended before stb had what it needed.
  bool ran_out() const { return ran_out_ || position_ == size_; }
  bool asked_past_end() const { return ran_out_; }

 private:
  static int read(void* self, char* out, int wanted) {
    auto& stream = *static_cast<ByteStream*>(self);
    const size_t available = stream.size_ - stream.position_;
    const size_t count = std::min(available, static_cast<size_t>(std::max(wanted, 0)));
    if (count == 0 && wanted > 0) stream.ran_out_ = true;
    std::memcpy(out, stream.data_ + stream.position_, count);
    stream.position_ += count;
    return static_cast<int>(count);
  }

  static void skip(void* self, int count) {
    auto& stream = *static_cast<ByteStream*>(self);
    if (count < 0) {
      stream.position_ -= std::min(stream.position_, static_cast<size_t>(-static_cast<long long>(count)));
    } else if (static_cast<size_t>(count) > stream.size_ - stream.position_) {
      stream.ran_out_ = true;
      stream.position_ = stream.size_;
    } else {
      stream.position_ += static_cast<size_t>(count);
    }
  }

  static int at_end(void* self) {
    const auto& stream = *static_cast<ByteStream*>(self);
    return stream.position_ >= stream.size_;
  }

  const uint8_t* data_;
  size_t size_;
  size_t position_ = 0;
  bool ran_out_ = false;
};

struct StbFree {
  void operator()(void* pixels) const { stbi_image_free(pixels); }
};

Error truncated(Format format) {
  return Error{std::string("The ") + format_name(format) +
               " file is truncated: it ends before the image data is complete."};
}

Error undecodable(Format format, const char* stb_reason) {
  const std::string reason = stb_reason != nullptr ? stb_reason : "unknown error";
  if (reason == "outofmem") {
    return Error{std::string("There is not enough memory to decode this ") + format_name(format) + " image."};
  }
  return Error{std::string("The ") + format_name(format) + " file is damaged or uses an unsupported variant (" +
               reason + ")."};
}

Error no_pixels() { return Error{"The image has no pixels: its header declares a width or height of 0."}; }

bool is_zero_size_reason(const char* stb_reason) {
  return stb_reason != nullptr && (std::strcmp(stb_reason, "0-pixel image") == 0 || std::strcmp(stb_reason, "0 width") == 0);
}

Error too_many_pixels(int width, int height, const Limits& limits) {
  const double megapixels = static_cast<double>(width) * height / 1e6;
  char text[320];
  std::snprintf(text, sizeof text,
                "The image declares %d x %d pixels (%.1f megapixels), more than the limit of %.1f megapixels; "
                "the file is probably corrupt or a decompression bomb.",
                width, height, megapixels, static_cast<double>(limits.max_pixels) / 1e6);
  return Error{text};
}

}  // namespace

Result<RawImage> decode_with_stb(const uint8_t* data, size_t size, const Limits& limits) {
  const Format format = sniff_format(data, size);
  if (format == Format::unknown) return Error{"The file is not a PNG, JPEG or BMP image."};

  int width = 0;
  int height = 0;
  int channels = 0;
  {
    ByteStream header(data, size);
    if (stbi_info_from_callbacks(&ByteStream::callbacks(), &header, &width, &height, &channels) == 0) {
      const char* reason = stbi_failure_reason();
      if (is_zero_size_reason(reason)) return no_pixels();
      if (header.asked_past_end()) return truncated(format);
      return undecodable(format, reason);
    }
  }
  if (width <= 0 || height <= 0) return no_pixels();
  if (static_cast<uint64_t>(width) * static_cast<uint64_t>(height) > limits.max_pixels) {
    return too_many_pixels(width, height, limits);
  }

  bool sixteen_bit = false;
  {
    ByteStream probe(data, size);
    sixteen_bit = stbi_is_16_bit_from_callbacks(&ByteStream::callbacks(), &probe) != 0;
  }

  ByteStream body(data, size);
  int loaded_width = 0;
  int loaded_height = 0;
  int loaded_channels = 0;
  std::unique_ptr<void, StbFree> pixels(
      sixteen_bit ? static_cast<void*>(stbi_load_16_from_callbacks(&ByteStream::callbacks(), &body, &loaded_width,
                                                                   &loaded_height, &loaded_channels, 0))
                  : static_cast<void*>(stbi_load_from_callbacks(&ByteStream::callbacks(), &body, &loaded_width,
                                                                &loaded_height, &loaded_channels, 0)));
  if (body.asked_past_end()) return truncated(format);
  if (!pixels) {
    if (body.ran_out()) return truncated(format);
    return undecodable(format, stbi_failure_reason());
  }

  RawImage image;
  image.width = loaded_width;
  image.height = loaded_height;
  image.channels = loaded_channels;
  image.bit_depth = sixteen_bit ? 16 : 8;
  const size_t sample_count = static_cast<size_t>(loaded_width) * loaded_height * loaded_channels;
  if (sixteen_bit) {
    const auto* samples = static_cast<const uint16_t*>(pixels.get());
    image.samples.assign(samples, samples + sample_count);
  } else {
    const auto* samples = static_cast<const uint8_t*>(pixels.get());
    image.samples.assign(samples, samples + sample_count);
  }
  return image;
}

}  // namespace oac::detail
