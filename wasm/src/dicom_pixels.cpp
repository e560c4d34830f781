// The DICOM pixel data: the image pixel module's layout, and the first frame's stored samples from native,
// RLE or JPEG pixel data (dicom_internal.hpp).

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "decoders.hpp"
#include "dicom_internal.hpp"

namespace oac::dicom {
namespace {

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

bool ends_with_end_marker(Bytes fragment) {
  // Fragments are padded to an even length, so the end-of-image marker may precede one zero byte.
  const size_t size = fragment.size - (fragment.size > 0 && fragment.data[fragment.size - 1] == 0 ? 1 : 0);
  return size >= 2 && fragment.data[size - 2] == 0xff && fragment.data[size - 1] == 0xd9;
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

}  // namespace

Result<std::vector<uint8_t>> encapsulated_first_frame(const DataSetReader& reader, const ElementHeader& pixel_data,
                                                      int frames, PixelCoding coding) {
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
    if (multi_frame && !second_frame_at && (coding == PixelCoding::rle || ends_with_end_marker(value))) break;
  }
  if (!any_fragment) return damaged("its encapsulated pixel data has no fragments");
  return frame;
}

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

Result<StoredSamples> first_frame_samples(const DataSetReader& reader, const ElementHeader& pixel_data,
                                          PixelCoding coding, PixelLayout& layout, const Limits& limits) {
  if (coding == PixelCoding::native) return native_samples(reader, pixel_data, layout);
  if (coding == PixelCoding::jpeg && layout.bits_stored > 8) {
    return unsupported("is " + std::to_string(layout.bits_stored) + "-bit JPEG (only 8-bit JPEG is supported)");
  }
  Result<std::vector<uint8_t>> frame = encapsulated_first_frame(reader, pixel_data, layout.frames, coding);
  if (!frame) return frame.error();
  return coding == PixelCoding::rle ? rle_samples(frame.value(), layout) : jpeg_samples(frame.value(), layout, limits);
}

}  // namespace oac::dicom
