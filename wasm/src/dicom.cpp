// DICOM Part 10 reader (oac/dicom.hpp): the transfer syntax, from stored values to display samples, and the
// entry points. dicom_internal.hpp says what the data set and pixel data parts do.

#include "oac/dicom.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "dicom_internal.hpp"

namespace oac {
namespace dicom {
namespace {

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

  Result<StoredSamples> samples = first_frame_samples(reader, *attributes.pixel_data, coding, layout, limits);
  if (!samples) return samples.error();
  RawImage image = display_image(std::move(samples).value(), layout, attributes);
  image.metadata = read_metadata(attributes);
  return image;
}

}  // namespace
}  // namespace dicom

bool looks_like_dicom(const uint8_t* data, size_t size) {
  using namespace dicom;
  if (data == nullptr) return false;
  if (starts_with_dicm(data, size)) return true;
  if (size < 8) return false;
  const uint16_t group = read_u16(data, ByteOrder::little);
  if (group != 0x0002 && group != 0x0008) return false;
  return is_value_representation(data + 4) || read_u32(data + 4, ByteOrder::little) <= size - 8;
}

Result<RawImage> decode_dicom(const uint8_t* data, size_t size, const Limits& limits) {
  using namespace dicom;
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
