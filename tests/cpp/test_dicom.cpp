// DICOM decoding with DCMTK as the oracle. tests/dicom/make_dicom_fixtures.py writes DICOM files in
// every supported transfer syntax and layout, each with dcmj2pnm's rendering, into dicom_fixtures/.

#include <algorithm>
#include <cstdlib>

#include "fixture_folder.hpp"

using namespace oac_test;

namespace {

const std::string kFolder = "dicom_fixtures/";

const nlohmann::json& manifest() {
  static const nlohmann::json parsed = read_json(kFolder + "manifest.json");
  return parsed;
}

std::string text_of(const nlohmann::json& object, const char* key) { return member(object, key).get<std::string>(); }

int number_of(const nlohmann::json& object, const char* key) {
  return static_cast<int>(member(object, key).get<double>());
}

int largest_difference(const oac::RawImage& image, const oac::RawImage& reference) {
  int largest = 0;
  for (size_t i = 0; i < image.samples.size(); ++i) {
    largest = std::max(largest, std::abs(int{image.samples[i]} - int{reference.samples[i]}));
  }
  return largest;
}

}  // namespace

TEST_CASE("DICOM files made by DCMTK decode as DCMTK renders them", "[dicom]") {
  const auto& cases = member(manifest(), "cases");
  REQUIRE(cases.size() >= 20);
  if (!member(manifest(), "datasets").get<bool>()) WARN("datasets absent: only the synthetic DICOM cases ran");
  for (const nlohmann::json& entry : cases) {
    const std::string name = text_of(entry, "name");
    CAPTURE(name);
    const oac::Result<oac::RawImage> decoded = decode_file(kFolder + text_of(entry, "file"));
    REQUIRE(error_of(decoded).empty());
    const oac::RawImage& image = decoded.value();
    const oac::Result<oac::RawImage> reference = decode_file(kFolder + text_of(entry, "reference"));
    REQUIRE(reference.ok());

    CHECK(image.width == number_of(entry, "width"));
    CHECK(image.height == number_of(entry, "height"));
    CHECK(image.channels == number_of(entry, "channels"));
    CHECK(image.bit_depth == number_of(entry, "bit_depth"));
    REQUIRE(image.width == reference.value().width);
    REQUIRE(image.height == reference.value().height);
    REQUIRE(image.channels == reference.value().channels);
    REQUIRE(image.bit_depth == reference.value().bit_depth);
    CHECK(largest_difference(image, reference.value()) <= number_of(entry, "tolerance"));

    CHECK(image.metadata.laterality == text_of(entry, "laterality"));
    const nlohmann::json& spacing = member(entry, "pixel_spacing_mm");
    REQUIRE(image.metadata.pixel_spacing_mm.has_value() == spacing.is_array());
    if (image.metadata.pixel_spacing_mm) {
      CHECK((*image.metadata.pixel_spacing_mm)[0] == spacing.at(0).get<double>());
      CHECK((*image.metadata.pixel_spacing_mm)[1] == spacing.at(1).get<double>());
    }
  }
}

TEST_CASE("a DICOM made without loss from a PNG gives that PNG's tensors bit for bit", "[dicom]") {
  const oac::PreprocessSpec spec = product_preprocess();
  int compared = 0;
  for (const nlohmann::json& entry : member(manifest(), "cases")) {
    const std::string source = text_of(entry, "source_png");
    if (source.empty()) continue;
    CAPTURE(text_of(entry, "name"), source);
    const std::vector<uint8_t> dicom = read_file(kFolder + text_of(entry, "file"));
    const std::vector<uint8_t> png = read_file(source);
    const auto from_dicom = oac::prepare(dicom.data(), dicom.size(), spec);
    const auto from_png = oac::prepare(png.data(), png.size(), spec);
    REQUIRE(error_of(from_dicom).empty());
    REQUIRE(error_of(from_png).empty());
    REQUIRE(from_dicom.value().size() == from_png.value().size());
    for (size_t knee = 0; knee < from_png.value().size(); ++knee) {
      CHECK(from_dicom.value()[knee].side == from_png.value()[knee].side);
      CHECK(from_dicom.value()[knee].crop.pixels == from_png.value()[knee].crop.pixels);
      CHECK(from_dicom.value()[knee].tensor == from_png.value()[knee].tensor);
      CHECK(from_dicom.value()[knee].metadata.laterality == text_of(entry, "laterality"));
    }
    ++compared;
  }
  if (member(manifest(), "datasets").get<bool>()) CHECK(compared >= 20);
}

TEST_CASE("compressed DICOM the core cannot decode is refused with the syntax's name and a way out", "[dicom]") {
  const auto& refused = member(manifest(), "refused");
  REQUIRE(refused.size() >= 4);
  for (const nlohmann::json& entry : refused) {
    CAPTURE(text_of(entry, "name"));
    CHECK(error_of(decode_file(kFolder + text_of(entry, "file"))) == text_of(entry, "error"));
  }
}

TEST_CASE("DICOM is recognised by its marker or, without the preamble, by its first element", "[dicom]") {
  const std::vector<uint8_t> file = read_file(kFolder + "multiframe8.dcm");
  CHECK(oac::looks_like_dicom(file.data(), file.size()));
  CHECK(oac::looks_like_dicom(file.data() + 132, file.size() - 132));  // group 0002, explicit VR
  const std::vector<uint8_t> data_set_only = read_file(kFolder + "multiframe8-data-set-only.dcm");
  CHECK(oac::looks_like_dicom(data_set_only.data(), data_set_only.size()));  // group 0008, implicit VR
  const uint8_t png_signature[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  CHECK_FALSE(oac::looks_like_dicom(png_signature, sizeof png_signature));
  CHECK_FALSE(oac::looks_like_dicom(nullptr, 0));
}
