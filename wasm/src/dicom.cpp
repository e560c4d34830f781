// DICOM Part 10 reader (PS3.10 file format, PS3.5 encodings, PS3.3 image pixel module).
//
// Everything from the file goes through bounds-checked reads: a length is compared with
// what is left of the buffer before it is used, nesting depth is capped, and every loop
// advances by at least one element header, so a hostile file can only produce an Error.

#include "oac/dicom.hpp"

#include <stb_image.h>  // declarations only; stb_decoder.cpp holds the implementation

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decoders.hpp"

namespace oac {
namespace {

constexpr uint32_t make_tag(uint16_t group, uint16_t element) { return uint32_t{group} << 16 | element; }

constexpr uint32_t kTransferSyntaxTag = make_tag(0x0002, 0x0010);
constexpr uint32_t kImagerPixelSpacingTag = make_tag(0x0018, 0x1164);
constexpr uint32_t kLateralityTag = make_tag(0x0020, 0x0060);
constexpr uint32_t kImageLateralityTag = make_tag(0x0020, 0x0062);
constexpr uint32_t kSamplesPerPixelTag = make_tag(0x0028, 0x0002);
constexpr uint32_t kPhotometricTag = make_tag(0x0028, 0x0004);
constexpr uint32_t kPlanarConfigurationTag = make_tag(0x0028, 0x0006);
constexpr uint32_t kNumberOfFramesTag = make_tag(0x0028, 0x0008);
constexpr uint32_t kRowsTag = make_tag(0x0028, 0x0010);
constexpr uint32_t kColumnsTag = make_tag(0x0028, 0x0011);
constexpr uint32_t kPixelSpacingTag = make_tag(0x0028, 0x0030);
constexpr uint32_t kBitsAllocatedTag = make_tag(0x0028, 0x0100);
constexpr uint32_t kBitsStoredTag = make_tag(0x0028, 0x0101);
constexpr uint32_t kHighBitTag = make_tag(0x0028, 0x0102);
constexpr uint32_t kPixelRepresentationTag = make_tag(0x0028, 0x0103);
constexpr uint32_t kWindowCenterTag = make_tag(0x0028, 0x1050);
constexpr uint32_t kWindowWidthTag = make_tag(0x0028, 0x1051);
constexpr uint32_t kRescaleInterceptTag = make_tag(0x0028, 0x1052);
constexpr uint32_t kRescaleSlopeTag = make_tag(0x0028, 0x1053);
constexpr uint32_t kPixelDataTag = make_tag(0x7fe0, 0x0010);
constexpr uint32_t kItemTag = make_tag(0xfffe, 0xe000);
constexpr uint32_t kItemDelimiterTag = make_tag(0xfffe, 0xe00d);
constexpr uint32_t kSequenceDelimiterTag = make_tag(0xfffe, 0xe0dd);

// The top-level attributes the decoder reads; all others are skipped unread.
constexpr uint32_t kWantedTags[] = {
    kImagerPixelSpacingTag, kLateralityTag,       kImageLateralityTag,    kSamplesPerPixelTag,
    kPhotometricTag,        kPlanarConfigurationTag, kNumberOfFramesTag,  kRowsTag,
    kColumnsTag,            kPixelSpacingTag,     kBitsAllocatedTag,      kBitsStoredTag,
    kHighBitTag,            kPixelRepresentationTag, kWindowCenterTag,    kWindowWidthTag,
    kRescaleInterceptTag,   kRescaleSlopeTag,
};

constexpr uint32_t kUndefinedLength = 0xffffffff;
// Real files nest sequences a handful of levels deep; the cap keeps recursion bounded.
constexpr int kMaxSequenceDepth = 32;

enum class ByteOrder { little, big };

struct Encoding {
  bool explicit_vr = true;
  ByteOrder order = ByteOrder::little;
};

constexpr Encoding kExplicitLittle{true, ByteOrder::little};
constexpr Encoding kImplicitLittle{false, ByteOrder::little};
constexpr Encoding kExplicitBig{true, ByteOrder::big};

enum class PixelCoding { native, deflated, rle, jpeg, unsupported };

struct TransferSyntax {
  const char* uid;
  const char* name;
  Encoding encoding;
  PixelCoding coding;
};

constexpr TransferSyntax kTransferSyntaxes[] = {
    {"1.2.840.10008.1.2", "Implicit VR Little Endian", kImplicitLittle, PixelCoding::native},
    {"1.2.840.10008.1.2.1", "Explicit VR Little Endian", kExplicitLittle, PixelCoding::native},
    {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", kExplicitLittle, PixelCoding::deflated},
    {"1.2.840.10008.1.2.2", "Explicit VR Big Endian", kExplicitBig, PixelCoding::native},
    {"1.2.840.10008.1.2.5", "RLE Lossless", kExplicitLittle, PixelCoding::rle},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline", kExplicitLittle, PixelCoding::jpeg},
    // 8-bit extended JPEG is what stb_image calls baseline; 12-bit is refused after the header is read.
    {"1.2.840.10008.1.2.4.51", "JPEG Extended", kExplicitLittle, PixelCoding::jpeg},
    {"1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless (first-order prediction)", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.92", "JPEG 2000 Multi-component Lossless", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.93", "JPEG 2000 Multi-component", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.94", "JPIP Referenced", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.100", "MPEG-2 video", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.101", "MPEG-2 video", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.102", "MPEG-4 video", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.103", "MPEG-4 video", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.104", "MPEG-4 video", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.105", "MPEG-4 video", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.106", "MPEG-4 video", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.107", "HEVC video", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.108", "HEVC video", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.110", "JPEG XL Lossless", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.112", "JPEG XL", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Lossless", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 Lossless", kExplicitLittle, PixelCoding::unsupported},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000", kExplicitLittle, PixelCoding::unsupported},
};

constexpr const char* kExportAdvice =
    "Export the image from your viewer as uncompressed DICOM (transfer syntax Explicit VR Little Endian) "
    "or as PNG, then open that file.";

// ---------------------------------------------------------------------------------------------
// Errors

Error truncated() { return Error{"The DICOM file is truncated: it ends before the image data is complete."}; }

Error damaged(const std::string& detail) { return Error{"The DICOM file is damaged: " + detail + "."}; }

std::string tag_name(uint32_t tag) {
  char text[16];
  std::snprintf(text, sizeof text, "(%04X,%04X)", static_cast<unsigned>(tag >> 16), static_cast<unsigned>(tag & 0xffff));
  return text;
}

Error length_past_end(uint32_t tag, uint64_t length, size_t remaining) {
  return Error{"The DICOM file is truncated or damaged: element " + tag_name(tag) + " declares " +
               std::to_string(length) + " bytes but only " + std::to_string(remaining) + " remain."};
}

Error unsupported(const std::string& what) { return Error{"The DICOM image " + what + ", which this app cannot read. " + kExportAdvice}; }

// ---------------------------------------------------------------------------------------------
// Byte access. Callers check the bounds before reading.

uint16_t read_u16(const uint8_t* at, ByteOrder order) {
  return order == ByteOrder::little ? static_cast<uint16_t>(at[0] | at[1] << 8)
                                    : static_cast<uint16_t>(at[0] << 8 | at[1]);
}

uint32_t read_u32(const uint8_t* at, ByteOrder order) {
  const uint32_t low = read_u16(at, order);
  const uint32_t high = read_u16(at + 2, order);
  return order == ByteOrder::little ? low | high << 16 : high | low << 16;
}

struct Bytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

std::string_view trimmed_text(Bytes value) {
  std::string_view text(reinterpret_cast<const char*>(value.data), value.size);
  const size_t first = text.find_first_not_of(" \0", 0, 2);
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(" \0", std::string_view::npos, 2);
  return text.substr(first, last - first + 1);
}

// The backslash-separated numbers of a DS or IS value; nullopt where one does not parse.
std::vector<std::optional<double>> numbers(Bytes value) {
  std::vector<std::optional<double>> out;
  std::string_view rest = trimmed_text(value);
  while (true) {
    const size_t end = rest.find('\\');
    std::string part(trimmed_text({reinterpret_cast<const uint8_t*>(rest.data()), std::min(end, rest.size())}));
    char* parsed_to = nullptr;
    const double number = std::strtod(part.c_str(), &parsed_to);
    const bool valid = !part.empty() && parsed_to == part.c_str() + part.size() && std::isfinite(number);
    out.push_back(valid ? std::optional<double>(number) : std::nullopt);
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return out;
}

// Value representations (PS3.5 table 6.2-1); those in the second list have a 4-byte length.
bool is_value_representation(const uint8_t* vr) {
  static constexpr char kAll[] =
      "AEASATCSDADSDTFLFDISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV";
  for (size_t i = 0; i + 1 < sizeof kAll; i += 2) {
    if (vr[0] == kAll[i] && vr[1] == kAll[i + 1]) return true;
  }
  return false;
}

bool has_long_length(const uint8_t* vr) {
  static constexpr char kLong[] = "OBODOFOLOVOWSQSVUCUNURUTUV";
  for (size_t i = 0; i + 1 < sizeof kLong; i += 2) {
    if (vr[0] == kLong[i] && vr[1] == kLong[i + 1]) return true;
  }
  return false;
}

bool vr_is(const char (&vr)[3], const char* expected) { return vr[0] == expected[0] && vr[1] == expected[1]; }

// ---------------------------------------------------------------------------------------------
// Data set parsing

struct ElementHeader {
  uint32_t tag = 0;
  char vr[3] = {0, 0, 0};  // explicit VR only
  uint32_t length = 0;
  size_t value_at = 0;
};

class DataSetReader {
 public:
  DataSetReader(Bytes bytes, Encoding encoding) : bytes_(bytes), encoding_(encoding) {}

  // Reads the element header at `at` and moves `at` to its value.
  Result<ElementHeader> header(size_t& at) const { return header_in(encoding_, at); }

  // The offset after the value of `element`, whatever its length or nesting.
  Result<size_t> skip_value(const ElementHeader& element) const {
    return skip_value_in(encoding_, element, element.value_at, 0);
  }

  // The end of a defined-length value starting at `at`, once it is known to fit.
  Result<size_t> within(const ElementHeader& element, size_t at) const {
    const size_t remaining = bytes_.size - at;
    if (element.length > remaining) return length_past_end(element.tag, element.length, remaining);
    return at + element.length;
  }

  Bytes value(const ElementHeader& element) const { return {bytes_.data + element.value_at, element.length}; }
  size_t size() const { return bytes_.size; }
  const Encoding& encoding() const { return encoding_; }

 private:
  Result<ElementHeader> header_in(const Encoding& encoding, size_t& at) const {
    const uint8_t* data = bytes_.data;
    if (bytes_.size - at < 8) return truncated();
    ElementHeader element;
    element.tag = uint32_t{read_u16(data + at, encoding.order)} << 16 | read_u16(data + at + 2, encoding.order);
    const bool delimiter = element.tag >> 16 == 0xfffe;
    if (delimiter || !encoding.explicit_vr) {
      element.length = read_u32(data + at + 4, encoding.order);
      at += 8;
    } else {
      const uint8_t* vr = data + at + 4;
      if (!is_value_representation(vr)) {
        return damaged("element " + tag_name(element.tag) + " has no valid value representation");
      }
      element.vr[0] = static_cast<char>(vr[0]);
      element.vr[1] = static_cast<char>(vr[1]);
      if (has_long_length(vr)) {
        if (bytes_.size - at < 12) return truncated();
        element.length = read_u32(data + at + 8, encoding.order);
        at += 12;
      } else {
        element.length = read_u16(data + at + 6, encoding.order);
        at += 8;
      }
    }
    element.value_at = at;
    return element;
  }

  // A defined length is checked and skipped. An undefined length marks a sequence, whose items are
  // walked; UN sequences are encoded in implicit VR (PS3.5 6.2.2).
  Result<size_t> skip_value_in(const Encoding& encoding, const ElementHeader& element, size_t at, int depth) const {
    if (element.length != kUndefinedLength) return within(element, at);
    const bool sequence = !encoding.explicit_vr || vr_is(element.vr, "SQ") || vr_is(element.vr, "UN");
    if (!sequence) return damaged("element " + tag_name(element.tag) + " has an undefined length");
    return skip_sequence(vr_is(element.vr, "UN") ? kImplicitLittle : encoding, at, depth + 1);
  }

  // Items up to the sequence delimiter; returns the offset after it.
  Result<size_t> skip_sequence(const Encoding& encoding, size_t at, int depth) const {
    if (depth > kMaxSequenceDepth) return damaged("its sequences are nested too deeply");
    while (true) {
      Result<ElementHeader> item = header_in(encoding, at);
      if (!item) return item.error();
      if (item.value().tag == kSequenceDelimiterTag) return at;
      if (item.value().tag != kItemTag) return damaged("a sequence holds " + tag_name(item.value().tag) + " instead of an item");
      Result<size_t> end = item.value().length == kUndefinedLength ? skip_item(encoding, at, depth)
                                                                    : within(item.value(), at);
      if (!end) return end;
      at = end.value();
    }
  }

  // Elements of an undefined-length item up to its delimiter; returns the offset after it.
  Result<size_t> skip_item(const Encoding& encoding, size_t at, int depth) const {
    while (true) {
      Result<ElementHeader> element = header_in(encoding, at);
      if (!element) return element.error();
      const ElementHeader& header = element.value();
      if (header.tag == kItemDelimiterTag) return at;
      Result<size_t> end = skip_value_in(encoding, header, at, depth);
      if (!end) return end;
      at = end.value();
    }
  }

  Bytes bytes_;
  Encoding encoding_;
};

// The top-level attributes the decoder needs, and where the pixel data is.
struct ImageAttributes {
  std::map<uint32_t, Bytes> values;
  std::optional<ElementHeader> pixel_data;

  std::optional<uint16_t> unsigned_short(uint32_t tag, ByteOrder order) const {
    const auto found = values.find(tag);
    if (found == values.end() || found->second.size < 2) return std::nullopt;
    return read_u16(found->second.data, order);
  }

  std::optional<double> number(uint32_t tag, size_t index = 0) const {
    const auto found = values.find(tag);
    if (found == values.end()) return std::nullopt;
    const std::vector<std::optional<double>> all = numbers(found->second);
    return index < all.size() ? all[index] : std::nullopt;
  }

  std::string text(uint32_t tag) const {
    const auto found = values.find(tag);
    return found == values.end() ? std::string() : std::string(trimmed_text(found->second));
  }
};

Result<ImageAttributes> read_attributes(const DataSetReader& reader, size_t at) {
  ImageAttributes attributes;
  while (at < reader.size()) {
    Result<ElementHeader> element = reader.header(at);
    if (!element) return element.error();
    const ElementHeader& header = element.value();
    if (header.tag == kPixelDataTag) {
      attributes.pixel_data = header;
      break;
    }
    if (header.tag >> 16 == 0xfffe) return damaged("it has a stray " + tag_name(header.tag) + " delimiter");
    Result<size_t> end = reader.skip_value(header);
    if (!end) return end.error();
    const bool wanted = std::find(std::begin(kWantedTags), std::end(kWantedTags), header.tag) != std::end(kWantedTags);
    if (wanted && header.length != kUndefinedLength) attributes.values[header.tag] = reader.value(header);
    at = end.value();
  }
  return attributes;
}

// ---------------------------------------------------------------------------------------------
// File meta information (group 0002, always explicit VR little endian)

struct FileStart {
  size_t data_set_at = 0;
  std::string transfer_syntax_uid;  // empty when the file has no meta information
};

bool starts_with_dicm(const uint8_t* data, size_t size) { return size >= 132 && std::memcmp(data + 128, "DICM", 4) == 0; }

uint16_t group_at(const uint8_t* data, size_t size, size_t at) {
  return size - at >= 2 ? read_u16(data + at, ByteOrder::little) : 0;
}

Result<FileStart> read_file_meta(Bytes file) {
  FileStart start;
  size_t at = starts_with_dicm(file.data, file.size) ? 132 : 0;
  const DataSetReader meta(file, kExplicitLittle);
  while (at < file.size && group_at(file.data, file.size, at) == 0x0002) {
    Result<ElementHeader> element = meta.header(at);
    if (!element) return element.error();
    if (element.value().length == kUndefinedLength) {
      return damaged("its file meta element " + tag_name(element.value().tag) + " has an undefined length");
    }
    Result<size_t> end = meta.within(element.value(), at);
    if (!end) return end.error();
    if (element.value().tag == kTransferSyntaxTag) start.transfer_syntax_uid = trimmed_text(meta.value(element.value()));
    at = end.value();
  }
  start.data_set_at = at;
  return start;
}

// Without a transfer syntax UID: explicit VR if the first element shows a VR, else implicit.
Encoding guess_encoding(Bytes file, size_t at) {
  const bool explicit_vr = file.size - at >= 6 && is_value_representation(file.data + at + 4);
  return explicit_vr ? kExplicitLittle : kImplicitLittle;
}

// ---------------------------------------------------------------------------------------------
// Deflate

// stb keeps its last failure reason per thread and returns some failures (a reserved block type)
// without setting one. Failing on purpose first means the reason read afterwards is never stale.
void reset_stb_failure_reason() {
  static const uint8_t kNothing = 0;
  int ignored = 0;
  stbi_info_from_memory(&kNothing, 0, &ignored, &ignored, &ignored);
}

// Raw deflate of the data set after the meta information. The output grows by doubling up to the
// byte limit, which is what stops a decompression bomb.
Result<std::vector<uint8_t>> inflate(Bytes compressed, const Limits& limits) {
  const size_t most = static_cast<size_t>(std::min<uint64_t>(limits.max_bytes, INT_MAX));
  // stb_image (2.27) refills its bit buffer 16 bits ahead and fails when that would pass the end of
  // the input, which a raw deflate stream without zlib's checksum trailer reaches on its last codes.
  // Zero bytes after the stream are never decoded: the final block's end code comes first.
  constexpr size_t kPadding = 8;
  if (compressed.size > INT_MAX - kPadding) return damaged("its deflated data set is too large");
  std::vector<uint8_t> input(compressed.data, compressed.data + compressed.size);
  input.resize(compressed.size + kPadding, 0);
  size_t capacity = static_cast<size_t>(std::min<uint64_t>(most, std::max<uint64_t>(uint64_t{compressed.size} * 4, 1 << 16)));
  while (true) {
    std::vector<uint8_t> out(capacity);
    reset_stb_failure_reason();
    const int produced = stbi_zlib_decode_noheader_buffer(reinterpret_cast<char*>(out.data()), static_cast<int>(capacity),
                                                          reinterpret_cast<const char*>(input.data()),
                                                          static_cast<int>(input.size()));
    if (produced >= 0) {
      out.resize(static_cast<size_t>(produced));
      return out;
    }
    const char* reason = stbi_failure_reason();
    const bool out_of_room = reason != nullptr && std::strcmp(reason, "output buffer limit") == 0;
    if (!out_of_room) return damaged("its deflated data set does not inflate");
    if (capacity >= most) {
      return Error{"The DICOM file's deflated data expands to more than " + detail::describe_bytes(most) +
                   "; the file is probably corrupt or a decompression bomb."};
    }
    capacity = std::min(most, capacity * 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Pixel data

struct PixelLayout {
  int rows = 0;
  int columns = 0;
  int samples_per_pixel = 1;
  int bits_allocated = 0;
  int bits_stored = 0;
  int high_bit = 0;
  bool is_signed = false;
  bool planar = false;  // colour planes one after the other instead of interleaved
  int frames = 1;
  std::string photometric;

  size_t pixel_count() const { return static_cast<size_t>(rows) * static_cast<size_t>(columns); }
  size_t sample_count() const { return pixel_count() * static_cast<size_t>(samples_per_pixel); }
  int bytes_per_sample() const { return bits_allocated / 8; }
  uint64_t frame_bytes() const { return uint64_t{sample_count()} * static_cast<uint64_t>(bytes_per_sample()); }
};

Result<PixelLayout> read_layout(const ImageAttributes& attributes, ByteOrder order, const Limits& limits) {
  PixelLayout layout;
  const std::optional<uint16_t> rows = attributes.unsigned_short(kRowsTag, order);
  const std::optional<uint16_t> columns = attributes.unsigned_short(kColumnsTag, order);
  const std::optional<uint16_t> bits_allocated = attributes.unsigned_short(kBitsAllocatedTag, order);
  if (!rows || !columns || !bits_allocated) {
    return damaged("it has pixel data but lacks Rows, Columns or Bits Allocated");
  }
  if (*rows == 0 || *columns == 0) return detail::no_pixels();
  if (uint64_t{*rows} * *columns > limits.max_pixels) return detail::too_many_pixels(*columns, *rows, limits);
  layout.rows = *rows;
  layout.columns = *columns;
  layout.bits_allocated = *bits_allocated;
  layout.bits_stored = attributes.unsigned_short(kBitsStoredTag, order).value_or(*bits_allocated);
  layout.high_bit = attributes.unsigned_short(kHighBitTag, order).value_or(static_cast<uint16_t>(layout.bits_stored - 1));
  layout.samples_per_pixel = attributes.unsigned_short(kSamplesPerPixelTag, order).value_or(1);
  layout.is_signed = attributes.unsigned_short(kPixelRepresentationTag, order).value_or(0) == 1;
  layout.planar = attributes.unsigned_short(kPlanarConfigurationTag, order).value_or(0) == 1;
  layout.frames = static_cast<int>(std::clamp(attributes.number(kNumberOfFramesTag).value_or(1.0), 1.0, 1e9));
  layout.photometric = attributes.text(kPhotometricTag);
  if (layout.photometric.empty()) layout.photometric = layout.samples_per_pixel == 3 ? "RGB" : "MONOCHROME2";

  if (layout.bits_allocated != 8 && layout.bits_allocated != 16) {
    return unsupported("stores " + std::to_string(layout.bits_allocated) + " bits per sample (8 and 16 are supported)");
  }
  if (layout.bits_stored < 1 || layout.bits_stored > layout.bits_allocated || layout.high_bit < layout.bits_stored - 1 ||
      layout.high_bit >= layout.bits_allocated) {
    return damaged("its Bits Stored (" + std::to_string(layout.bits_stored) + ") and High Bit (" +
                   std::to_string(layout.high_bit) + ") do not fit in Bits Allocated (" +
                   std::to_string(layout.bits_allocated) + ")");
  }
  const bool monochrome = layout.photometric == "MONOCHROME1" || layout.photometric == "MONOCHROME2";
  if (!monochrome && layout.photometric != "RGB" && layout.photometric != "YBR_FULL" &&
      layout.photometric != "YBR_FULL_422") {
    return unsupported("uses the colour model " + layout.photometric);
  }
  if (layout.samples_per_pixel != (monochrome ? 1 : 3)) {
    return damaged("its colour model " + layout.photometric + " does not match " +
                   std::to_string(layout.samples_per_pixel) + " samples per pixel");
  }
  return layout;
}

// The first frame's samples as stored (bits_allocated wide, interleaved).
using StoredSamples = std::vector<uint16_t>;

Result<StoredSamples> native_samples(const DataSetReader& reader, const ElementHeader& pixel_data, const PixelLayout& layout) {
  if (pixel_data.length == kUndefinedLength) {
    return damaged("its Pixel Data is encapsulated although the transfer syntax is uncompressed");
  }
  Result<size_t> end = reader.within(pixel_data, pixel_data.value_at);
  if (!end) return end.error();
  const Bytes value = reader.value(pixel_data);
  // Big endian OW swaps the bytes of each 16-bit word even when samples are 8 bits wide.
  const bool swapped_bytes = layout.bits_allocated == 8 && reader.encoding().order == ByteOrder::big &&
                             vr_is(pixel_data.vr, "OW");
  const uint64_t needed = layout.frame_bytes() + (swapped_bytes ? layout.frame_bytes() % 2 : 0);
  if (value.size < needed) {
    return Error{"The DICOM file is truncated: its pixel data holds " + std::to_string(value.size) +
                 " bytes, fewer than the " + std::to_string(layout.frame_bytes()) + " bytes of one " +
                 std::to_string(layout.columns) + " x " + std::to_string(layout.rows) + " image."};
  }
  StoredSamples samples(layout.sample_count());
  const size_t pixels = layout.pixel_count();
  const size_t channels = static_cast<size_t>(layout.samples_per_pixel);
  for (size_t pixel = 0; pixel < pixels; ++pixel) {
    for (size_t channel = 0; channel < channels; ++channel) {
      const size_t index = layout.planar ? channel * pixels + pixel : pixel * channels + channel;
      samples[pixel * channels + channel] = layout.bits_allocated == 16
                                                ? read_u16(value.data + 2 * index, reader.encoding().order)
                                                : value.data[swapped_bytes ? index ^ 1 : index];
    }
  }
  return samples;
}

bool ends_jpeg(Bytes fragment) {
  // Fragments are padded to an even length, so the end-of-image marker may precede one zero byte.
  const size_t size = fragment.size - (fragment.size > 0 && fragment.data[fragment.size - 1] == 0 ? 1 : 0);
  return size >= 2 && fragment.data[size - 2] == 0xff && fragment.data[size - 1] == 0xd9;
}

// Frame 1 of encapsulated Pixel Data (PS3.5 A.4): an offset table item, then fragment items up to a
// sequence delimiter. A single-frame image is all its fragments. With several frames, frame 1 ends at
// frame 2's offset in the table, or without a table at a JPEG end-of-image marker (RLE stores each frame
// in one fragment). Fragments after frame 1 are not read.
Result<std::vector<uint8_t>> first_frame(const DataSetReader& reader, const ElementHeader& pixel_data, int frames,
                                         PixelCoding coding) {
  if (pixel_data.length != kUndefinedLength) {
    return damaged("its Pixel Data is not encapsulated although the transfer syntax is compressed");
  }
  std::vector<uint8_t> frame;
  bool read_offset_table = false;
  bool any_fragment = false;
  std::optional<uint32_t> second_frame_at;  // counted from the first fragment's item tag
  size_t fragments_at = 0;
  size_t at = pixel_data.value_at;
  while (at < reader.size()) {
    const size_t item_at = at;
    Result<ElementHeader> item = reader.header(at);
    if (!item) return item.error();
    if (item.value().tag == kSequenceDelimiterTag) break;
    if (item.value().tag != kItemTag || item.value().length == kUndefinedLength) {
      return damaged("its encapsulated pixel data holds " + tag_name(item.value().tag) + " instead of a fragment");
    }
    Result<size_t> end = reader.within(item.value(), at);
    if (!end) return end.error();
    at = end.value();
    const Bytes value = reader.value(item.value());
    if (!read_offset_table) {
      read_offset_table = true;
      if (value.size >= 8) second_frame_at = read_u32(value.data + 4, ByteOrder::little);
      fragments_at = at;
      continue;
    }
    const bool multi_frame = frames > 1;
    if (multi_frame && second_frame_at && item_at - fragments_at >= *second_frame_at) break;
    any_fragment = true;
    frame.insert(frame.end(), value.data, value.data + value.size);
    if (multi_frame && !second_frame_at && (coding != PixelCoding::jpeg || ends_jpeg(value))) break;
  }
  if (!any_fragment) return damaged("its encapsulated pixel data has no fragments");
  return frame;
}

// PS3.5 annex G: a 64-byte header of segment offsets, each segment one byte plane in PackBits.
Result<StoredSamples> rle_samples(const std::vector<uint8_t>& frame, const PixelLayout& layout) {
  const size_t header_size = 64;
  if (frame.size() < header_size) return damaged("its RLE frame is shorter than the RLE header");
  const int bytes_per_sample = layout.bytes_per_sample();
  const uint32_t expected_segments = static_cast<uint32_t>(layout.samples_per_pixel * bytes_per_sample);
  const uint32_t segment_count = read_u32(frame.data(), ByteOrder::little);
  if (segment_count != expected_segments) {
    return damaged("its RLE frame has " + std::to_string(segment_count) + " segments instead of " +
                   std::to_string(expected_segments));
  }
  const size_t pixels = layout.pixel_count();
  const size_t channels = static_cast<size_t>(layout.samples_per_pixel);
  StoredSamples samples(layout.sample_count(), 0);
  for (uint32_t segment = 0; segment < segment_count; ++segment) {
    const size_t begin = read_u32(frame.data() + 4 + 4 * segment, ByteOrder::little);
    const size_t end = segment + 1 < segment_count ? read_u32(frame.data() + 8 + 4 * segment, ByteOrder::little)
                                                   : frame.size();
    if (begin < header_size || begin > end || end > frame.size()) {
      return damaged("its RLE segment offsets point outside the frame");
    }
    const size_t channel = segment / static_cast<uint32_t>(bytes_per_sample);
    // Segments hold the most significant byte plane first.
    const int shift = 8 * (bytes_per_sample - 1 - static_cast<int>(segment % static_cast<uint32_t>(bytes_per_sample)));
    size_t pixel = 0;
    size_t at = begin;
    auto put = [&](uint8_t byte) { samples[pixel++ * channels + channel] |= static_cast<uint16_t>(byte << shift); };
    while (pixel < pixels && at < end) {
      const auto control = static_cast<int8_t>(frame[at++]);
      if (control >= 0) {
        const size_t literal = static_cast<size_t>(control) + 1;
        if (literal > end - at) return damaged("an RLE segment ends inside a literal run");
        for (size_t i = 0; i < literal && pixel < pixels; ++i) put(frame[at + i]);
        at += literal;
      } else if (control != -128) {
        if (at >= end) return damaged("an RLE segment ends inside a repeat run");
        const uint8_t byte = frame[at++];
        for (int i = 0; i < 1 - control && pixel < pixels; ++i) put(byte);
      }
    }
    if (pixel < pixels) return damaged("an RLE segment holds fewer pixels than the image");
  }
  return samples;
}

Result<StoredSamples> jpeg_samples(const std::vector<uint8_t>& frame, PixelLayout& layout, const Limits& limits) {
  if (frame.size() < 3 || frame[0] != 0xff || frame[1] != 0xd8 || frame[2] != 0xff) {
    return damaged("its compressed pixel data is not a JPEG stream");
  }
  Result<RawImage> decoded = detail::decode_with_stb(frame.data(), frame.size(), limits);
  if (!decoded) return Error{"The DICOM file's embedded JPEG image could not be read. " + decoded.error().message};
  const RawImage& image = decoded.value();
  if (image.width != layout.columns || image.height != layout.rows || image.channels != layout.samples_per_pixel) {
    return damaged("its embedded JPEG image is " + std::to_string(image.width) + " x " + std::to_string(image.height) +
                   " with " + std::to_string(image.channels) + " channel(s), but its header says " +
                   std::to_string(layout.columns) + " x " + std::to_string(layout.rows) + " with " +
                   std::to_string(layout.samples_per_pixel));
  }
  // stb_image hands back 8-bit samples, already converted from YCbCr to RGB.
  layout.bits_allocated = 8;
  layout.bits_stored = 8;
  layout.high_bit = 7;
  if (layout.samples_per_pixel == 3) layout.photometric = "RGB";
  return image.samples;
}

// ---------------------------------------------------------------------------------------------
// From stored values to display samples

// Grey levels after the modality and VOI transforms (PS3.3 C.11.1, C.11.2). Stored values are
// first made unsigned by flipping the sign bit (offset binary), so one table covers all of them.
std::vector<uint16_t> grey_lookup(const PixelLayout& layout, const ImageAttributes& attributes, int& out_bits) {
  const uint32_t levels = 1u << layout.bits_stored;
  const double offset = layout.is_signed ? levels / 2 : 0;
  // A zero or unreadable slope is a broken header; the identity keeps the image readable.
  double slope = attributes.number(kRescaleSlopeTag).value_or(1.0);
  if (slope == 0) slope = 1;
  const double intercept = attributes.number(kRescaleInterceptTag).value_or(0.0);
  const bool monochrome1 = layout.photometric == "MONOCHROME1";

  // The first window, always with the LINEAR function of PS3.3 C.11.2.1.2.1, as DCMTK renders it: VOI LUT
  // Function is not read, because SIGMOID would need exp(), whose last bit differs between libms.
  const std::optional<double> center = attributes.number(kWindowCenterTag);
  const std::optional<double> width = attributes.number(kWindowWidthTag);
  std::vector<uint16_t> lookup(levels);
  if (center && width && *width >= 1) {
    out_bits = 16;
    const double top = 65535;
    const double half_span = (*width - 1) / 2;
    for (uint32_t stored = 0; stored < levels; ++stored) {
      const double x = (stored - offset) * slope + intercept;
      const double y = x <= *center - 0.5 - half_span  ? 0
                       : x > *center - 0.5 + half_span ? top
                                                       : ((x - (*center - 0.5)) / (*width - 1) + 0.5) * top;
      // The clamp matters only for extreme headers, where rounding can step just outside the window.
      const double level = std::clamp(monochrome1 ? top - y : y, 0.0, top);
      lookup[stored] = static_cast<uint16_t>(std::floor(level));
    }
  } else {
    // Without a window the rescale is linear, so only its sign matters: the percentile window of
    // canonicalise() sees the same image whatever the slope and intercept.
    out_bits = layout.bits_stored <= 8 ? 8 : 16;
    const int shift = out_bits - layout.bits_stored;
    const uint32_t top = (1u << out_bits) - 1;
    const bool inverted = monochrome1 != (slope < 0);
    for (uint32_t stored = 0; stored < levels; ++stored) {
      const uint32_t level = stored << shift;
      lookup[stored] = static_cast<uint16_t>(inverted ? top - level : level);
    }
  }
  return lookup;
}

RawImage display_image(StoredSamples samples, const PixelLayout& layout, const ImageAttributes& attributes) {
  const int low_bit = layout.high_bit + 1 - layout.bits_stored;
  const uint32_t mask = (1u << layout.bits_stored) - 1;
  const uint32_t sign_bit = layout.is_signed ? 1u << (layout.bits_stored - 1) : 0;
  RawImage image;
  image.width = layout.columns;
  image.height = layout.rows;
  image.channels = layout.samples_per_pixel;
  if (layout.samples_per_pixel == 1) {
    const std::vector<uint16_t> lookup = grey_lookup(layout, attributes, image.bit_depth);
    for (uint16_t& sample : samples) sample = lookup[((sample >> low_bit) & mask) ^ sign_bit];
  } else {
    image.bit_depth = layout.bits_stored <= 8 ? 8 : 16;
    const int shift = image.bit_depth - layout.bits_stored;
    for (uint16_t& sample : samples) sample = static_cast<uint16_t>((((sample >> low_bit) & mask) ^ sign_bit) << shift);
  }
  image.samples = std::move(samples);
  return image;
}

ImageMetadata read_metadata(const ImageAttributes& attributes) {
  ImageMetadata metadata;
  metadata.polarity_from_header = true;
  for (const uint32_t tag : {kPixelSpacingTag, kImagerPixelSpacingTag}) {
    const std::optional<double> between_rows = attributes.number(tag, 0);
    const std::optional<double> between_columns = attributes.number(tag, 1);
    if (between_rows && between_columns && *between_rows > 0 && *between_columns > 0) {
      metadata.pixel_spacing_mm = std::array<double, 2>{*between_rows, *between_columns};
      break;
    }
  }
  for (const uint32_t tag : {kImageLateralityTag, kLateralityTag}) {
    const std::string value = attributes.text(tag);
    if (value == "L" || value == "R" || value == "B" || value == "U") {
      metadata.laterality = value;
      break;
    }
  }
  return metadata;
}

const TransferSyntax* find_transfer_syntax(const std::string& uid) {
  for (const TransferSyntax& syntax : kTransferSyntaxes) {
    if (uid == syntax.uid) return &syntax;
  }
  return nullptr;
}

Result<RawImage> decode_data_set(const DataSetReader& reader, size_t at, PixelCoding coding, const Limits& limits) {
  if (at >= reader.size()) return truncated();
  Result<ImageAttributes> read = read_attributes(reader, at);
  if (!read) return read.error();
  const ImageAttributes& attributes = read.value();
  if (!attributes.pixel_data) {
    return Error{"The DICOM file contains no image: it has no Pixel Data (it may be a report, a presentation state "
                 "or a directory)."};
  }
  Result<PixelLayout> read_layout_result = read_layout(attributes, reader.encoding().order, limits);
  if (!read_layout_result) return read_layout_result.error();
  PixelLayout layout = read_layout_result.value();
  const bool colour_transformed = layout.photometric == "YBR_FULL" || layout.photometric == "YBR_FULL_422";
  if (colour_transformed && coding != PixelCoding::jpeg) {
    return unsupported("stores uncompressed colour as " + layout.photometric + " instead of RGB");
  }

  Result<StoredSamples> samples = StoredSamples{};
  if (coding == PixelCoding::native) {
    samples = native_samples(reader, *attributes.pixel_data, layout);
  } else {
    if (coding == PixelCoding::jpeg && layout.bits_stored > 8) {
      return unsupported("is " + std::to_string(layout.bits_stored) + "-bit JPEG (only 8-bit JPEG is supported)");
    }
    Result<std::vector<uint8_t>> frame = first_frame(reader, *attributes.pixel_data, layout.frames, coding);
    if (!frame) return frame.error();
    samples = coding == PixelCoding::rle ? rle_samples(frame.value(), layout) : jpeg_samples(frame.value(), layout, limits);
  }
  if (!samples) return samples.error();
  RawImage image = display_image(std::move(samples).value(), layout, attributes);
  image.metadata = read_metadata(attributes);
  return image;
}

}  // namespace

bool looks_like_dicom(const uint8_t* data, size_t size) {
  if (data == nullptr) return false;
  if (starts_with_dicm(data, size)) return true;
  if (size < 8) return false;
  const uint16_t group = read_u16(data, ByteOrder::little);
  if (group != 0x0002 && group != 0x0008) return false;
  return is_value_representation(data + 4) || read_u32(data + 4, ByteOrder::little) <= size - 8;
}

Result<RawImage> decode_dicom(const uint8_t* data, size_t size, const Limits& limits) {
  if (data == nullptr || size == 0) return Error{"The file is empty."};
  const Bytes file{data, size};
  Result<FileStart> start = read_file_meta(file);
  if (!start) return start.error();
  const std::string& uid = start.value().transfer_syntax_uid;
  const size_t data_set_at = start.value().data_set_at;

  if (uid.empty()) return decode_data_set(DataSetReader(file, guess_encoding(file, data_set_at)), data_set_at, PixelCoding::native, limits);
  const TransferSyntax* syntax = find_transfer_syntax(uid);
  if (syntax == nullptr) return unsupported("uses the unknown transfer syntax " + uid);
  if (syntax->coding == PixelCoding::unsupported) {
    return Error{std::string("The DICOM file is compressed with ") + syntax->name + " (transfer syntax " + uid +
                 "), which this app cannot decode. " + kExportAdvice};
  }
  if (syntax->coding == PixelCoding::deflated) {
    Result<std::vector<uint8_t>> inflated = inflate({data + data_set_at, size - data_set_at}, limits);
    if (!inflated) return inflated.error();
    const std::vector<uint8_t>& data_set = inflated.value();
    return decode_data_set(DataSetReader({data_set.data(), data_set.size()}, syntax->encoding), 0, PixelCoding::native,
                           limits);
  }
  return decode_data_set(DataSetReader(file, syntax->encoding), data_set_at, syntax->coding, limits);
}

}  // namespace oac
