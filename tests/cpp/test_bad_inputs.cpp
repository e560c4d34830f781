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

std::vector<Control> decode_controls(const oac::json::Value& expected) {
  std::vector<Control> controls;
  for (const oac::json::Value& entry : member(expected, "controls").items) {
    Control control{member(entry, "file").string, read_file(kFolder + member(entry, "file").string), {}};
    CAPTURE(control.file);
    oac::Result<oac::RawImage> decoded = oac::decode(control.bytes.data(), control.bytes.size());
    REQUIRE(error_of(decoded).empty());
    control.image = std::move(decoded).value();
    CHECK(control.image.width == member(entry, "width").number);
    CHECK(control.image.height == member(entry, "height").number);
    CHECK(control.image.channels == member(entry, "channels").number);
    CHECK(control.image.bit_depth == member(entry, "bit_depth").number);
    controls.push_back(std::move(control));
  }
  return controls;
}

}  // namespace

TEST_CASE("bad-input corpus: exact messages, and the next image still decodes", "[bad-inputs]") {
  const oac::json::Value expected = read_json(kFolder + "expected.json");
  const std::vector<Control> controls = decode_controls(expected);
  REQUIRE(controls.size() == 2);
  const oac::PreprocessSpec spec = product_preprocess();
  const auto& cases = member(expected, "cases").items;
  REQUIRE(cases.size() >= 30);

  for (const oac::json::Value& entry : cases) {
    const std::string file = member(entry, "file").string;
    CAPTURE(file, member(entry, "what").string);
    const std::vector<uint8_t> bytes = read_file(kFolder + file);
    const oac::Result<oac::RawImage> decoded = oac::decode(bytes.data(), bytes.size());
    const oac::json::Value& error = member(entry, "error");
    if (error.kind == oac::json::Value::Kind::null) {
      const oac::json::Value& facts = member(entry, "decoded");
      REQUIRE(error_of(decoded).empty());
      CHECK(decoded.value().width == member(facts, "width").number);
      CHECK(decoded.value().height == member(facts, "height").number);
      CHECK(decoded.value().channels == member(facts, "channels").number);
      CHECK(decoded.value().bit_depth == member(facts, "bit_depth").number);
    } else {
      CHECK(error_of(decoded) == error.string);
      CHECK(error_of(oac::prepare(bytes.data(), bytes.size(), spec)) == error.string);
    }
    for (const Control& control : controls) {
      CAPTURE(control.file);
      const oac::Result<oac::RawImage> again = oac::decode(control.bytes.data(), control.bytes.size());
      REQUIRE(error_of(again).empty());
      CHECK(again.value().samples == control.image.samples);
    }
  }
}
