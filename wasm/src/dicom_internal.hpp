#pragma once
// What the three parts of the DICOM Part 10 reader share (PS3.10 file format, PS3.5 encodings, PS3.3 image
// pixel module):
//   dicom_dataset.cpp  the data set: file meta information, element headers and value representations,
//                      sequences, the attributes the image needs, deflated data sets;
//   dicom_pixels.cpp   the pixel data: its layout, and the first frame's stored samples from native, RLE or
//                      JPEG pixel data;
//   dicom.cpp          the transfer syntax, stored values to display samples, and oac::decode_dicom;
//   dicom_directory.cpp  a DICOMDIR's directory records (oac::read_dicomdir).
//
// Everything from the file goes through bounds-checked reads: a length is compared with what is left of the
// buffer before it is used, nesting depth is capped, and every loop advances by at least one element header,
// so a hostile file can only produce an Error.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "oac/image.hpp"
#include "oac/result.hpp"

namespace oac::dicom {

constexpr uint32_t make_tag(uint16_t group, uint16_t element) { return uint32_t{group} << 16 | element; }

inline constexpr uint32_t kMediaStorageSopClassTag = make_tag(0x0002, 0x0002);
inline constexpr uint32_t kTransferSyntaxTag = make_tag(0x0002, 0x0010);
inline constexpr uint32_t kSopClassTag = make_tag(0x0008, 0x0016);
inline constexpr uint32_t kModalityTag = make_tag(0x0008, 0x0060);
inline constexpr uint32_t kStudyDescriptionTag = make_tag(0x0008, 0x1030);
inline constexpr uint32_t kSeriesDescriptionTag = make_tag(0x0008, 0x103e);
inline constexpr uint32_t kBodyPartTag = make_tag(0x0018, 0x0015);
inline constexpr uint32_t kStudyInstanceTag = make_tag(0x0020, 0x000d);
inline constexpr uint32_t kSeriesInstanceTag = make_tag(0x0020, 0x000e);
inline constexpr uint32_t kSeriesNumberTag = make_tag(0x0020, 0x0011);
inline constexpr uint32_t kInstanceNumberTag = make_tag(0x0020, 0x0013);
inline constexpr uint32_t kImagerPixelSpacingTag = make_tag(0x0018, 0x1164);
inline constexpr uint32_t kLateralityTag = make_tag(0x0020, 0x0060);
inline constexpr uint32_t kImageLateralityTag = make_tag(0x0020, 0x0062);
inline constexpr uint32_t kSamplesPerPixelTag = make_tag(0x0028, 0x0002);
inline constexpr uint32_t kPhotometricTag = make_tag(0x0028, 0x0004);
inline constexpr uint32_t kPlanarConfigurationTag = make_tag(0x0028, 0x0006);
inline constexpr uint32_t kNumberOfFramesTag = make_tag(0x0028, 0x0008);
inline constexpr uint32_t kRowsTag = make_tag(0x0028, 0x0010);
inline constexpr uint32_t kColumnsTag = make_tag(0x0028, 0x0011);
inline constexpr uint32_t kPixelSpacingTag = make_tag(0x0028, 0x0030);
inline constexpr uint32_t kBitsAllocatedTag = make_tag(0x0028, 0x0100);
inline constexpr uint32_t kBitsStoredTag = make_tag(0x0028, 0x0101);
inline constexpr uint32_t kHighBitTag = make_tag(0x0028, 0x0102);
inline constexpr uint32_t kPixelRepresentationTag = make_tag(0x0028, 0x0103);
inline constexpr uint32_t kWindowCenterTag = make_tag(0x0028, 0x1050);
inline constexpr uint32_t kWindowWidthTag = make_tag(0x0028, 0x1051);
inline constexpr uint32_t kRescaleInterceptTag = make_tag(0x0028, 0x1052);
inline constexpr uint32_t kRescaleSlopeTag = make_tag(0x0028, 0x1053);
inline constexpr uint32_t kPixelDataTag = make_tag(0x7fe0, 0x0010);
inline constexpr uint32_t kRootRecordOffsetTag = make_tag(0x0004, 0x1200);
inline constexpr uint32_t kDirectoryRecordSequenceTag = make_tag(0x0004, 0x1220);
inline constexpr uint32_t kNextRecordOffsetTag = make_tag(0x0004, 0x1400);
inline constexpr uint32_t kRecordInUseTag = make_tag(0x0004, 0x1410);
inline constexpr uint32_t kLowerLevelOffsetTag = make_tag(0x0004, 0x1420);
inline constexpr uint32_t kRecordTypeTag = make_tag(0x0004, 0x1430);
inline constexpr uint32_t kReferencedFileIdTag = make_tag(0x0004, 0x1500);
inline constexpr uint32_t kReferencedSopClassTag = make_tag(0x0004, 0x1510);
inline constexpr uint32_t kItemTag = make_tag(0xfffe, 0xe000);
inline constexpr uint32_t kItemDelimiterTag = make_tag(0xfffe, 0xe00d);
inline constexpr uint32_t kSequenceDelimiterTag = make_tag(0xfffe, 0xe0dd);

inline constexpr uint32_t kUndefinedLength = 0xffffffff;

enum class ByteOrder { little, big };

struct Encoding {
  bool explicit_vr = true;
  ByteOrder order = ByteOrder::little;
};

inline constexpr Encoding kExplicitLittle{true, ByteOrder::little};
inline constexpr Encoding kImplicitLittle{false, ByteOrder::little};
inline constexpr Encoding kExplicitBig{true, ByteOrder::big};

// `outside`: decoded by a codec outside the core (oac::compressed_frame, oac::decode_dicom_with_frame).
enum class PixelCoding { native, deflated, rle, jpeg, outside, unsupported };

inline constexpr const char* kExportAdvice =
    "Export the image from your viewer as uncompressed DICOM (transfer syntax Explicit VR Little Endian) "
    "or as PNG, then open that file.";

// ---------------------------------------------------------------------------------------------
// Errors (dicom_dataset.cpp)

Error truncated();
Error damaged(const std::string& detail);
std::string tag_name(uint32_t tag);
Error length_past_end(uint32_t tag, uint64_t length, size_t remaining);
Error unsupported(const std::string& what);

// ---------------------------------------------------------------------------------------------
// Byte access. Callers check the bounds before reading.

inline uint16_t read_u16(const uint8_t* at, ByteOrder order) {
  return order == ByteOrder::little ? static_cast<uint16_t>(at[0] | at[1] << 8)
                                    : static_cast<uint16_t>(at[0] << 8 | at[1]);
}

inline uint32_t read_u32(const uint8_t* at, ByteOrder order) {
  const uint32_t low = read_u16(at, order);
  const uint32_t high = read_u16(at + 2, order);
  return order == ByteOrder::little ? low | high << 16 : high | low << 16;
}

struct Bytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// ---------------------------------------------------------------------------------------------
// The data set (dicom_dataset.cpp)

// One of the value representations of PS3.5 table 6.2-1.
bool is_value_representation(const uint8_t* vr);

inline bool vr_is(const char (&vr)[3], const char* expected) { return vr[0] == expected[0] && vr[1] == expected[1]; }

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

  // The offset after `item` (an item header), whatever its length.
  Result<size_t> item_end(const ElementHeader& item) const {
    return item.length == kUndefinedLength ? skip_item(encoding_, item.value_at, 0) : within(item, item.value_at);
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
  Result<ElementHeader> header_in(const Encoding& encoding, size_t& at) const;
  Result<size_t> skip_value_in(const Encoding& encoding, const ElementHeader& element, size_t at, int depth) const;
  Result<size_t> skip_sequence(const Encoding& encoding, size_t at, int depth) const;
  Result<size_t> skip_item(const Encoding& encoding, size_t at, int depth) const;

  Bytes bytes_;
  Encoding encoding_;
};

// The attributes of a data set or an item that a reader asked for, and where the pixel data is.
struct ImageAttributes {
  std::map<uint32_t, Bytes> values;
  // Where each asked-for element is, for a sequence's items to be read.
  std::map<uint32_t, ElementHeader> headers;
  std::optional<ElementHeader> pixel_data;

  std::optional<uint16_t> unsigned_short(uint32_t tag, ByteOrder order) const {
    const auto found = values.find(tag);
    if (found == values.end() || found->second.size < 2) return std::nullopt;
    return read_u16(found->second.data, order);
  }

  std::optional<uint32_t> unsigned_long(uint32_t tag, ByteOrder order) const {
    const auto found = values.find(tag);
    if (found == values.end() || found->second.size < 4) return std::nullopt;
    return read_u32(found->second.data, order);
  }

  // The index-th number of a DS or IS value; nullopt where absent or not a number.
  std::optional<double> number(uint32_t tag, size_t index = 0) const;
  // The value without its padding.
  std::string text(uint32_t tag) const;
  // The first number of an IS or DS value as an int, clamped so that nonsense cannot overflow it; 0 where absent.
  int whole_number(uint32_t tag) const;
};

// The top-level elements from `at` up to Pixel Data.
Result<ImageAttributes> read_attributes(const DataSetReader& reader, size_t at);

// The elements from `at` up to `end` (or Pixel Data), keeping those whose tag is in `wanted`.
Result<ImageAttributes> read_elements(const DataSetReader& reader, size_t at, size_t end,
                                      const std::vector<uint32_t>& wanted);

struct FileStart {
  size_t data_set_at = 0;
  std::string transfer_syntax_uid;  // empty when the file has no meta information
  std::string media_storage_sop_class_uid;
};

bool starts_with_dicm(const uint8_t* data, size_t size);

// File meta information (group 0002, always explicit VR little endian).
Result<FileStart> read_file_meta(Bytes file);

// One of the transfer syntaxes the reader knows (dicom.cpp).
struct TransferSyntax {
  const char* uid;
  const char* name;
  Encoding encoding;
  PixelCoding coding;
};

// nullptr for a UID the reader does not know.
const TransferSyntax* find_transfer_syntax(const std::string& uid);

// Without a transfer syntax UID: explicit VR if the first element shows a VR, else implicit.
Encoding guess_encoding(Bytes file, size_t at);

// Raw deflate of the data set after the meta information, up to the byte limit.
Result<std::vector<uint8_t>> inflate(Bytes compressed, const Limits& limits);

// ---------------------------------------------------------------------------------------------
// The pixel data (dicom_pixels.cpp)

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

// The image pixel module's attributes, checked against each other and the limits.
Result<PixelLayout> read_layout(const ImageAttributes& attributes, ByteOrder order, const Limits& limits);

// The first frame's samples as stored (bits_allocated wide, interleaved).
using StoredSamples = std::vector<uint16_t>;

// Frame 1 of encapsulated Pixel Data (PS3.5 A.4), its fragments joined: a single-frame image is all its
// fragments; with several frames, frame 1 ends at frame 2's offset in the basic offset table, or without a
// table after one fragment (RLE) or at the fragment ending in an end-of-image / end-of-codestream marker
// (FFD9, shared by JPEG, JPEG-LS and JPEG 2000).
Result<std::vector<uint8_t>> encapsulated_first_frame(const DataSetReader& reader, const ElementHeader& pixel_data,
                                                      int frames, PixelCoding coding);

// The first frame of `pixel_data` in the transfer syntax's `coding` (native, RLE or JPEG). A JPEG frame comes
// back as 8-bit RGB or grey, and `layout` is updated to say so.
Result<StoredSamples> first_frame_samples(const DataSetReader& reader, const ElementHeader& pixel_data,
                                          PixelCoding coding, PixelLayout& layout, const Limits& limits);

}  // namespace oac::dicom
