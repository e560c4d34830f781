// The bad-input corpus of tools/bad_inputs.py (written into bad_inputs/ at test time): every malformed
// or hostile file gets its exact message from decode() and from prepare(), and the control images
// decoded after each one come out exactly as before.

#include "fixture_folder.hpp"

using namespace oac_test;

namespace {

const std::string kFolder = "bad_inputs/";

struct Control {
  std::string file;
  std::vector<uint8_t> bytes;
  oac::RawImage image;
};

std::vector<Control> decode_controls(const nlohmann::json& expected) {
  std::vector<Control> controls;
  for (const nlohmann::json& entry : member(expected, "controls")) {
    const std::string file = member(entry, "file").get<std::string>();
    Control control{file, read_file(kFolder + file), {}};
    CAPTURE(control.file);
    oac::Result<oac::RawImage> decoded = oac::decode(control.bytes.data(), control.bytes.size());
    REQUIRE(error_of(decoded).empty());
    control.image = std::move(decoded).value();
    CHECK(control.image.width == member(entry, "width").get<double>());
    CHECK(control.image.height == member(entry, "height").get<double>());
    CHECK(control.image.channels == member(entry, "channels").get<double>());
    CHECK(control.image.bit_depth == member(entry, "bit_depth").get<double>());
    controls.push_back(std::move(control));
  }
  return controls;
}

}  // namespace

TEST_CASE("bad-input corpus: exact messages, and the next image still decodes", "[bad-inputs]") {
  const nlohmann::json expected = read_json(kFolder + "expected.json");
  const std::vector<Control> controls = decode_controls(expected);
  REQUIRE(controls.size() == 2);
  const oac::PreprocessSpec spec = product_preprocess();
  const auto& cases = member(expected, "cases");
  REQUIRE(cases.size() >= 30);

  for (const nlohmann::json& entry : cases) {
    const std::string file = member(entry, "file").get<std::string>();
    CAPTURE(file, member(entry, "what").get<std::string>());
    const std::vector<uint8_t> bytes = read_file(kFolder + file);
    const oac::Result<oac::RawImage> decoded = oac::decode(bytes.data(), bytes.size());
    const nlohmann::json& error = member(entry, "error");
    if (error.is_null()) {
      const nlohmann::json& facts = member(entry, "decoded");
      REQUIRE(error_of(decoded).empty());
      CHECK(decoded.value().width == member(facts, "width").get<double>());
      CHECK(decoded.value().height == member(facts, "height").get<double>());
      CHECK(decoded.value().channels == member(facts, "channels").get<double>());
      CHECK(decoded.value().bit_depth == member(facts, "bit_depth").get<double>());
    } else {
      CHECK(error_of(decoded) == error.get<std::string>());
      CHECK(error_of(oac::prepare(bytes.data(), bytes.size(), spec)) == error.get<std::string>());
    }
    for (const Control& control : controls) {
      CAPTURE(control.file);
      const oac::Result<oac::RawImage> again = oac::decode(control.bytes.data(), control.bytes.size());
      REQUIRE(error_of(again).empty());
      CHECK(again.value().samples == control.image.samples);
    }
  }
}
