// DICOM Part 10 reader (oac/dicom.hpp): the transfer syntax, from stored values to display samples, and the
// entry points. dicom_internal.hpp says what the data set and pixel data parts do.

#include "oac/dicom.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dicom_internal.hpp"

namespace oac {
namespace dicom {
namespace {

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
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless", kExplicitLittle, PixelCoding::outside},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless (first-order prediction)", kExplicitLittle, PixelCoding::outside},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", kExplicitLittle, PixelCoding::outside},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", kExplicitLittle, PixelCoding::outside},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless", kExplicitLittle, PixelCoding::outside},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000", kExplicitLittle, PixelCoding::outside},
    {"1.2.840.10008.1.2.4.92", "JPEG 2000 Multi-component Lossless", kExplicitLittle, PixelCoding::outside},
    {"1.2.840.10008.1.2.4.93", "JPEG 2000 Multi-component", kExplicitLittle, PixelCoding::outside},
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
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Lossless", kExplicitLittle, PixelCoding::outside},
    {"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 Lossless", kExplicitLittle, PixelCoding::outside},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000", kExplicitLittle, PixelCoding::outside},
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

struct ImageHeader {
  ImageAttributes attributes;
  PixelLayout layout;
};

Result<ImageHeader> read_image_header(const DataSetReader& reader, size_t at, PixelCoding coding, const Limits& limits) {
  if (at >= reader.size()) return truncated();
  Result<ImageAttributes> read = read_attributes(reader, at);
  if (!read) return read.error();
  if (!read.value().pixel_data) {
    return Error{"The DICOM file contains no image: it has no Pixel Data (it may be a report, a presentation state "
                 "or a directory)."};
  }
  Result<PixelLayout> layout = read_layout(read.value(), reader.encoding().order, limits);
  if (!layout) return layout.error();
  const std::string& photometric = layout.value().photometric;
  const bool colour_transformed = photometric == "YBR_FULL" || photometric == "YBR_FULL_422";
  // A codec hands colour back as RGB; only uncompressed YBR would need the transform here.
  if (colour_transformed && coding != PixelCoding::jpeg && coding != PixelCoding::outside) {
    return unsupported("stores uncompressed colour as " + photometric + " instead of RGB");
  }
  return ImageHeader{std::move(read).value(), std::move(layout).value()};
}

Result<RawImage> decode_data_set(const DataSetReader& reader, size_t at, PixelCoding coding, const Limits& limits) {
  Result<ImageHeader> header = read_image_header(reader, at, coding, limits);
  if (!header) return header.error();
  PixelLayout& layout = header.value().layout;
  Result<StoredSamples> samples = first_frame_samples(reader, *header.value().attributes.pixel_data, coding, layout, limits);
  if (!samples) return samples.error();
  RawImage image = display_image(std::move(samples).value(), layout, header.value().attributes);
  image.metadata = read_metadata(header.value().attributes);
  image.metadata.frames = layout.frames;
  return image;
}

// A file whose frames an outside codec decodes: its syntax and where its data set starts.
struct OutsideCodecFile {
  const TransferSyntax* syntax = nullptr;
  size_t data_set_at = 0;
};

std::optional<OutsideCodecFile> open_outside_codec_file(const uint8_t* data, size_t size) {
  if (data == nullptr || !looks_like_dicom(data, size)) return std::nullopt;
  Result<FileStart> start = read_file_meta({data, size});
  if (!start) return std::nullopt;
  const TransferSyntax* syntax = find_transfer_syntax(start.value().transfer_syntax_uid);
  if (syntax == nullptr || syntax->coding != PixelCoding::outside) return std::nullopt;
  return OutsideCodecFile{syntax, start.value().data_set_at};
}

// Such a file's image header, with the reader its pixel data is read through.
struct OutsideCodecImage {
  const TransferSyntax* syntax;
  DataSetReader reader;
  ImageHeader header;
};

Result<OutsideCodecImage> read_outside_codec_image(const uint8_t* data, size_t size, const Limits& limits) {
  const std::optional<OutsideCodecFile> file = open_outside_codec_file(data, size);
  if (!file) {
    return Error{"This file is not a DICOM image compressed with JPEG Lossless, JPEG-LS, JPEG 2000 or HTJ2K."};
  }
  const DataSetReader reader({data, size}, file->syntax->encoding);
  Result<ImageHeader> header = read_image_header(reader, file->data_set_at, PixelCoding::outside, limits);
  if (!header) return header.error();
  return OutsideCodecImage{file->syntax, reader, std::move(header).value()};
}

}  // namespace

const TransferSyntax* find_transfer_syntax(const std::string& uid) {
  for (const TransferSyntax& syntax : kTransferSyntaxes) {
    if (uid == syntax.uid) return &syntax;
  }
  return nullptr;
}

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
  if (syntax->coding == PixelCoding::outside) {
    return Error{std::string("The DICOM file is compressed with ") + syntax->name + " (transfer syntax " + uid +
                 "), which the page and tools/oac classify decode with their codecs; this build of the image core "
                 "does not. " + kExportAdvice};
  }
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

Result<DicomFacts> describe_dicom(const uint8_t* data, size_t size, const Limits& limits) {
  using namespace dicom;
  if (data == nullptr || !looks_like_dicom(data, size)) return Error{"The file is not a DICOM file."};
  const Bytes file{data, size};
  Result<FileStart> start = read_file_meta(file);
  if (!start) return start.error();
  const std::string& uid = start.value().transfer_syntax_uid;
  const size_t at = start.value().data_set_at;
  const TransferSyntax* syntax = uid.empty() ? nullptr : find_transfer_syntax(uid);
  if (!uid.empty() && syntax == nullptr) return unsupported("uses the unknown transfer syntax " + uid);
  std::vector<uint8_t> inflated;
  Result<ImageAttributes> read = Error{};
  if (syntax != nullptr && syntax->coding == PixelCoding::deflated) {
    Result<std::vector<uint8_t>> data_set = inflate({data + at, size - at}, limits);
    if (!data_set) return data_set.error();
    inflated = std::move(data_set).value();
    read = read_attributes(DataSetReader({inflated.data(), inflated.size()}, syntax->encoding), 0);
  } else {
    const Encoding encoding = syntax != nullptr ? syntax->encoding : guess_encoding(file, at);
    read = at < size ? read_attributes(DataSetReader(file, encoding), at) : Result<ImageAttributes>(truncated());
  }
  if (!read) return read.error();
  const ImageAttributes& attributes = read.value();
  DicomFacts facts;
  facts.sop_class_uid = start.value().media_storage_sop_class_uid.empty() ? attributes.text(kSopClassTag)
                                                                          : start.value().media_storage_sop_class_uid;
  facts.modality = attributes.text(kModalityTag);
  facts.body_part = attributes.text(kBodyPartTag);
  facts.study_instance_uid = attributes.text(kStudyInstanceTag);
  facts.study_description = attributes.text(kStudyDescriptionTag);
  facts.series_instance_uid = attributes.text(kSeriesInstanceTag);
  facts.series_description = attributes.text(kSeriesDescriptionTag);
  facts.series_number = attributes.whole_number(kSeriesNumberTag);
  facts.instance_number = attributes.whole_number(kInstanceNumberTag);
  facts.has_pixel_data = attributes.pixel_data.has_value();
  return facts;
}

std::string outside_codec_syntax(const uint8_t* data, size_t size) {
  const std::optional<dicom::OutsideCodecFile> file = dicom::open_outside_codec_file(data, size);
  return file ? file->syntax->uid : std::string();
}

Result<CompressedFrame> compressed_frame(const uint8_t* data, size_t size, const Limits& limits) {
  using namespace dicom;
  Result<OutsideCodecImage> image = read_outside_codec_image(data, size, limits);
  if (!image) return image.error();
  const TransferSyntax& syntax = *image.value().syntax;
  const PixelLayout& layout = image.value().header.layout;
  Result<std::vector<uint8_t>> codestream = encapsulated_first_frame(
      image.value().reader, *image.value().header.attributes.pixel_data, layout.frames, PixelCoding::outside);
  if (!codestream) return codestream.error();
  return CompressedFrame{syntax.uid, syntax.name, std::move(codestream).value(), layout.rows, layout.columns,
                         layout.samples_per_pixel, layout.bits_allocated, layout.bits_stored, layout.is_signed,
                         layout.photometric, layout.frames};
}

Result<RawImage> decode_dicom_with_frame(const uint8_t* data, size_t size, const std::vector<uint16_t>& samples,
                                         const Limits& limits) {
  using namespace dicom;
  Result<OutsideCodecImage> opened = read_outside_codec_image(data, size, limits);
  if (!opened) return opened.error();
  const ImageAttributes& attributes = opened.value().header.attributes;
  PixelLayout& layout = opened.value().header.layout;
  if (samples.size() != layout.sample_count()) {
    return Error{"The DICOM file is damaged: its compressed image decoded to " + std::to_string(samples.size()) +
                 " samples, but its header describes " + std::to_string(layout.columns) + " x " +
                 std::to_string(layout.rows) + " pixels with " + std::to_string(layout.samples_per_pixel) +
                 " sample(s) each (" + std::to_string(layout.sample_count()) + ")."};
  }
  // Codecs hand back each value in its low bits, and colour as RGB, whatever the header's High Bit and
  // colour model.
  layout.high_bit = layout.bits_stored - 1;
  if (layout.samples_per_pixel == 3) layout.photometric = "RGB";
  RawImage image = display_image(samples, layout, attributes);
  image.metadata = read_metadata(attributes);
  image.metadata.frames = layout.frames;
  return image;
}

}  // namespace oac
