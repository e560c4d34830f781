// The DICOM data set: file meta information, element headers, value representations, sequences, the
// top-level attributes the image needs, and deflated data sets (dicom_internal.hpp).

#include <stb_image.h>  // declarations only; stb_decoder.cpp holds the implementation

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "decoders.hpp"
#include "dicom_internal.hpp"

namespace oac::dicom {
namespace {

// The top-level attributes the decoder and describe_dicom read; all others are skipped unread.
const std::vector<uint32_t> kImageTags = {
    kSopClassTag,           kModalityTag,         kStudyDescriptionTag,   kSeriesDescriptionTag,
    kBodyPartTag,           kStudyInstanceTag,    kSeriesInstanceTag,     kSeriesNumberTag,
    kInstanceNumberTag,     kImagerPixelSpacingTag, kLateralityTag,       kImageLateralityTag,    kSamplesPerPixelTag,
    kPhotometricTag,        kPlanarConfigurationTag, kNumberOfFramesTag,  kRowsTag,
    kColumnsTag,            kPixelSpacingTag,     kBitsAllocatedTag,      kBitsStoredTag,
    kHighBitTag,            kPixelRepresentationTag, kWindowCenterTag,    kWindowWidthTag,
    kRescaleInterceptTag,   kRescaleSlopeTag,
};

// Real files nest sequences a handful of levels deep; the cap keeps recursion bounded.
constexpr int kMaxSequenceDepth = 32;

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

// Value representations whose explicit-VR element header has a 4-byte length.
bool has_long_length(const uint8_t* vr) {
  static constexpr char kLong[] = "OBODOFOLOVOWSQSVUCUNURUTUV";
  for (size_t i = 0; i + 1 < sizeof kLong; i += 2) {
    if (vr[0] == kLong[i] && vr[1] == kLong[i + 1]) return true;
  }
  return false;
}

uint16_t group_at(const uint8_t* data, size_t size, size_t at) {
  return size - at >= 2 ? read_u16(data + at, ByteOrder::little) : 0;
}

// stb keeps its last failure reason per thread and returns some failures (a reserved block type)
// without setting one. Failing on purpose first means the reason read afterwards is never stale.
void reset_stb_failure_reason() {
  static const uint8_t kNothing = 0;
  int ignored = 0;
  stbi_info_from_memory(&kNothing, 0, &ignored, &ignored, &ignored);
}

}  // namespace

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
// Element headers and sequences

bool is_value_representation(const uint8_t* vr) {
  static constexpr char kAll[] =
      "AEASATCSDADSDTFLFDISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV";
  for (size_t i = 0; i + 1 < sizeof kAll; i += 2) {
    if (vr[0] == kAll[i] && vr[1] == kAll[i + 1]) return true;
  }
  return false;
}

Result<ElementHeader> DataSetReader::header_in(const Encoding& encoding, size_t& at) const {
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
Result<size_t> DataSetReader::skip_value_in(const Encoding& encoding, const ElementHeader& element, size_t at,
                                            int depth) const {
  if (element.length != kUndefinedLength) return within(element, at);
  const bool sequence = !encoding.explicit_vr || vr_is(element.vr, "SQ") || vr_is(element.vr, "UN");
  if (!sequence) return damaged("element " + tag_name(element.tag) + " has an undefined length");
  return skip_sequence(vr_is(element.vr, "UN") ? kImplicitLittle : encoding, at, depth + 1);
}

// Items up to the sequence delimiter; returns the offset after it.
Result<size_t> DataSetReader::skip_sequence(const Encoding& encoding, size_t at, int depth) const {
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
Result<size_t> DataSetReader::skip_item(const Encoding& encoding, size_t at, int depth) const {
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

// ---------------------------------------------------------------------------------------------
// Attributes

std::optional<double> ImageAttributes::number(uint32_t tag, size_t index) const {
  const auto found = values.find(tag);
  if (found == values.end()) return std::nullopt;
  const std::vector<std::optional<double>> all = numbers(found->second);
  return index < all.size() ? all[index] : std::nullopt;
}

std::string ImageAttributes::text(uint32_t tag) const {
  const auto found = values.find(tag);
  return found == values.end() ? std::string() : std::string(trimmed_text(found->second));
}

int ImageAttributes::whole_number(uint32_t tag) const {
  return static_cast<int>(std::clamp(number(tag).value_or(0.0), -1e9, 1e9));
}

Result<ImageAttributes> read_attributes(const DataSetReader& reader, size_t at) {
  return read_elements(reader, at, reader.size(), kImageTags);
}

Result<ImageAttributes> read_elements(const DataSetReader& reader, size_t at, size_t end,
                                      const std::vector<uint32_t>& wanted) {
  ImageAttributes attributes;
  while (at < end) {
    Result<ElementHeader> element = reader.header(at);
    if (!element) return element.error();
    const ElementHeader& header = element.value();
    if (header.tag == kPixelDataTag) {
      attributes.pixel_data = header;
      break;
    }
    if (header.tag >> 16 == 0xfffe) return damaged("it has a stray " + tag_name(header.tag) + " delimiter");
    Result<size_t> value_end = reader.skip_value(header);
    if (!value_end) return value_end.error();
    if (std::find(wanted.begin(), wanted.end(), header.tag) != wanted.end()) {
      attributes.headers[header.tag] = header;
      if (header.length != kUndefinedLength) attributes.values[header.tag] = reader.value(header);
    }
    at = value_end.value();
  }
  return attributes;
}

// ---------------------------------------------------------------------------------------------
// File meta information and deflate

bool starts_with_dicm(const uint8_t* data, size_t size) { return size >= 132 && std::memcmp(data + 128, "DICM", 4) == 0; }

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
    if (element.value().tag == kMediaStorageSopClassTag) {
      start.media_storage_sop_class_uid = trimmed_text(meta.value(element.value()));
    }
    at = end.value();
  }
  start.data_set_at = at;
  return start;
}

Encoding guess_encoding(Bytes file, size_t at) {
  const bool explicit_vr = file.size - at >= 6 && is_value_representation(file.data + at + 4);
  return explicit_vr ? kExplicitLittle : kImplicitLittle;
}

// The output grows by doubling up to the byte limit, which is what stops a decompression bomb.
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

}  // namespace oac::dicom
