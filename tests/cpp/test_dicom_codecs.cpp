// The core's side of the syntaxes a codec outside it decodes (JPEG Lossless, JPEG-LS, JPEG 2000): finding frame 1
// in the encapsulated pixel data, and turning a codec's samples into the image, against DCMTK and GDCM.
// tests/support/make_codec_fixtures.py writes the files and each toolkit's raw decoding into codec_fixtures/; here
// the toolkit's samples stand in for the codec's (tests/node/dicom_codecs.test.mjs checks the codecs themselves).

#include <cstring>

#include "fixture_folder.hpp"

using namespace oac_test;

namespace {

const std::string kFolder = "codec_fixtures/";

std::string text_of(const nlohmann::json& object, const char* key) { return member(object, key).get<std::string>(); }

int number_of(const nlohmann::json& object, const char* key) {
  return static_cast<int>(member(object, key).get<double>());
}

// Frame 1 of DCMTK's raw pixel data (bits_allocated wide, little-endian).
std::vector<uint16_t> frame_one(const std::vector<uint8_t>& raw, const nlohmann::json& entry) {
  const size_t count = static_cast<size_t>(number_of(entry, "rows")) * number_of(entry, "columns");
  const bool wide = number_of(entry, "bits_allocated") == 16;
  REQUIRE(raw.size() >= count * (wide ? 2 : 1));
  std::vector<uint16_t> samples(count);
  for (size_t i = 0; i < count; ++i) samples[i] = wide ? static_cast<uint16_t>(raw[2 * i] | raw[2 * i + 1] << 8) : raw[i];
  return samples;
}

bool starts_with(const std::vector<uint8_t>& bytes, std::initializer_list<uint8_t> prefix) {
  return bytes.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), bytes.begin());
}

}  // namespace

TEST_CASE("frame 1 of a compressed DICOM is found, and a codec's samples give what DCMTK's decoding gives", "[dicom]") {
  const nlohmann::json manifest = read_json(kFolder + "codecs.json");
  const auto& cases = member(manifest, "cases");
  REQUIRE(cases.size() >= 30);
  int multi_frame = 0;
  for (const nlohmann::json& entry : cases) {
    CAPTURE(text_of(entry, "name"));
    const std::vector<uint8_t> file = read_file(kFolder + text_of(entry, "file"));
    CHECK(oac::outside_codec_syntax(file.data(), file.size()) == text_of(entry, "syntax"));
    const std::string refusal = error_of(oac::decode(file.data(), file.size()));
    CHECK(refusal.find("(transfer syntax " + text_of(entry, "syntax") + "), which the page and tools/oac classify "
                       "decode with their codecs") != std::string::npos);

    const oac::Result<oac::CompressedFrame> frame = oac::compressed_frame(file.data(), file.size());
    REQUIRE(error_of(frame).empty());
    const oac::CompressedFrame& found = frame.value();
    CHECK(found.rows == number_of(entry, "rows"));
    CHECK(found.columns == number_of(entry, "columns"));
    CHECK(found.bits_allocated == number_of(entry, "bits_allocated"));
    CHECK(found.bits_stored == number_of(entry, "bits_stored"));
    CHECK(found.is_signed == member(entry, "is_signed").get<bool>());
    CHECK(found.photometric == text_of(entry, "photometric"));
    CHECK(found.frames == number_of(entry, "frames"));
    // A JPEG or JPEG-LS stream starts with SOI, a JPEG 2000 codestream with SOC; each ends with FFD9 (EOI, EOC).
    CHECK((starts_with(found.codestream, {0xff, 0xd8}) || starts_with(found.codestream, {0xff, 0x4f, 0xff, 0x51})));
    const size_t end = found.codestream.size() - (found.codestream.back() == 0 ? 1 : 0);
    REQUIRE(end >= 2);
    CHECK((found.codestream[end - 2] == 0xff && found.codestream[end - 1] == 0xd9));
    if (found.frames > 1) {
      ++multi_frame;
      // Frame 1 alone: shorter than the pixel data's fragments together.
      CHECK(found.codestream.size() * 2 < file.size());
    }

    const std::vector<uint16_t> samples = frame_one(read_file(kFolder + text_of(entry, "reference")), entry);
    const oac::Result<oac::RawImage> image = oac::decode_dicom_with_frame(file.data(), file.size(), samples);
    REQUIRE(error_of(image).empty());
    const std::string decoded_file = text_of(entry, "file").substr(0, text_of(entry, "file").size() - 4) + ".decoded.dcm";
    const oac::Result<oac::RawImage> reference = decode_file(kFolder + decoded_file);
    REQUIRE(error_of(reference).empty());
    CHECK(image.value().width == reference.value().width);
    CHECK(image.value().height == reference.value().height);
    CHECK(image.value().bit_depth == reference.value().bit_depth);
    CHECK(image.value().samples == reference.value().samples);
    CHECK(image.value().metadata.polarity_from_header);

    std::vector<uint16_t> short_by_one(samples.begin(), samples.end() - 1);
    CHECK(error_of(oac::decode_dicom_with_frame(file.data(), file.size(), short_by_one)) ==
          "The DICOM file is damaged: its compressed image decoded to " + std::to_string(short_by_one.size()) +
              " samples, but its header describes " + std::to_string(found.columns) + " x " +
              std::to_string(found.rows) + " pixels with 1 sample(s) each (" + std::to_string(samples.size()) + ").");
  }
  CHECK(multi_frame >= 3);
}

TEST_CASE("files the core decodes itself are not handed to a codec", "[dicom]") {
  const std::vector<uint8_t> png = read_file(kFolder + "../bad_inputs/control.png");
  const std::vector<uint8_t> dicom = read_file(kFolder + "../bad_inputs/control.dcm");
  for (const std::vector<uint8_t>* file : {&png, &dicom}) {
    CHECK(oac::outside_codec_syntax(file->data(), file->size()).empty());
    CHECK(error_of(oac::compressed_frame(file->data(), file->size())) ==
          "This file is not a DICOM image compressed with JPEG Lossless, JPEG-LS, JPEG 2000 or HTJ2K.");
    CHECK(error_of(oac::decode_dicom_with_frame(file->data(), file->size(), {1, 2, 3})) ==
          "This file is not a DICOM image compressed with JPEG Lossless, JPEG-LS, JPEG 2000 or HTJ2K.");
  }
  CHECK(oac::outside_codec_syntax(nullptr, 0).empty());
}
