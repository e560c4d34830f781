#include "test_support.hpp"

using namespace oac_test;

namespace {

// The test card with the first occurrence of `from` replaced by `to`.
std::string card_with(const std::string& from, const std::string& to) {
  std::string text = kTestCard;
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::string parse_error(const std::string& text) { return error_of(oac::parse_model_card(text)); }

}  // namespace

TEST_CASE("the product card parses", "[card]") {
  CHECK(error_of(oac::parse_model_card(fixtures::model_card)).empty());
}

TEST_CASE("every field is read", "[card]") {
  const oac::ModelSpec spec = test_spec();
  const oac::PreprocessSpec& pre = spec.preprocess;
  CHECK(pre.input_size == 224);
  CHECK(pre.layout == "NCHW");
  CHECK(pre.mean == std::array<double, 3>{0.5, 0.5, 0.5});
  CHECK(pre.stddev == std::array<double, 3>{0.5, 0.5, 0.5});
  CHECK(pre.window_percentiles == std::array<double, 2>{0.5, 99.5});
  CHECK(pre.border_tolerance == 0.02);
  CHECK(pre.border_max_fraction == 0.25);
  CHECK(pre.bilateral_min_aspect == 2.4);
  CHECK(pre.fit == "center_crop");
  CHECK(pre.radiograph.max_colour == 1);
  CHECK(pre.radiograph.max_roughness == 2);
  CHECK(pre.localise.polarity.profile == 1);
  CHECK(pre.localise.polarity.skew == 0);
  CHECK(pre.localise.polarity.threshold == 2);
  CHECK(spec.calibration.oa_temperature == 1.0);
  CHECK(spec.calibration.oa_bias == 0.0);
  CHECK(spec.calibration.kl_temperature == 1.0);
  CHECK(spec.threshold == 0.5);
  CHECK_FALSE(spec.kl_grade.by_cut_points);
  CHECK(spec.kl_set.coverage == 0.9);
  CHECK(spec.kl_set.threshold == 0.8);
  CHECK(spec.ood.threshold == 1e30);
}

TEST_CASE("unknown fields are ignored", "[card]") {
  const std::string text = card_with(
      "\"threshold\": 0.5",
      "\"threshold\": 0.5, \"future\": {\"nested\": [1, \"two\", null, true, {\"x\": -1.5e-3}]}, \"note\": \"caf\\u00e9 \\ud83d\\ude00\"");
  CHECK(parse_error(text).empty());
}

TEST_CASE("invalid cards name the problem", "[card][errors]") {
  // nlohmann/json's description, then the line and column of the character it stopped at.
  CHECK(parse_error("") ==
        "The model card is not valid JSON: syntax error while parsing value - unexpected end of input; expected '[', "
        "'{', or a literal at line 1, column 1.");
  CHECK(parse_error("{\n  \"preprocess\": {,}\n}") ==
        "The model card is not valid JSON: syntax error while parsing object key - unexpected ','; expected string "
        "literal at line 2, column 18.");
  CHECK(parse_error(kTestCard + "\n{}") ==
        "The model card is not valid JSON: syntax error while parsing value - unexpected '{'; expected end of input "
        "at line " + std::to_string(2 + std::count(kTestCard.begin(), kTestCard.end(), '\n')) + ", column 1.");
  CHECK(parse_error("[1, 2]") == "The model card must be a JSON object.");
  CHECK(parse_error(std::string(1000, '[')) ==
        "The model card is not valid JSON: values are nested too deeply at line 1, column 66.");
  CHECK(parse_error("{\"a\": 1e999}") ==
        "The model card is not valid JSON: number overflow parsing '1e999' at line 1, column 11.");
  CHECK(parse_error("{\"a\": \"\\q\"}") ==
        "The model card is not valid JSON: syntax error while parsing value - invalid string: forbidden character "
        "after backslash; last read: '\"\\q' at line 1, column 9.");
}

TEST_CASE("missing and ill-typed fields", "[card][errors]") {
  CHECK(parse_error("{}") == "The model card has no \"preprocess.input_size\" field.");
  CHECK(parse_error(card_with("\"mean\"", "\"average\"")) == "The model card has no \"preprocess.mean\" field.");
  CHECK(parse_error(card_with("\"ood\": {\"threshold\": 1e30}", "\"ood\": 3")) ==
        "The model card has no \"ood.threshold\" field.");
  CHECK(parse_error(card_with("\"input_size\": 224", "\"input_size\": \"224\"")) ==
        "The model card field \"preprocess.input_size\" must be a number.");
  CHECK(parse_error(card_with("\"input_size\": 224", "\"input_size\": 224.5")) ==
        "The model card field \"preprocess.input_size\" must be a whole number.");
  CHECK(parse_error(card_with("\"mean\": [0.5, 0.5, 0.5]", "\"mean\": [0.5, 0.5]")) ==
        "The model card field \"preprocess.mean\" must be a list of 3 numbers.");
  CHECK(parse_error(card_with("\"std\": [0.5, 0.5, 0.5]", "\"std\": [0.5, null, 0.5]")) ==
        "The model card field \"preprocess.std\" must be a list of 3 numbers.");
  CHECK(parse_error(card_with("\"layout\": \"NCHW\"", "\"layout\": 4")) ==
        "The model card field \"preprocess.layout\" must be a string.");
  CHECK(parse_error(card_with("\"threshold\": 0.5", "\"threshold\": true")) ==
        "The model card field \"threshold\" must be a number.");
  CHECK(parse_error(card_with("\"kl_set\": {\"coverage\": 0.9, \"threshold\": 0.8}", "\"kl_sets\": {}")) ==
        "The model card has no \"kl_set.coverage\" field.");
  CHECK(parse_error(card_with("\"coverage\": 0.9, \"threshold\": 0.8", "\"coverage\": 0.9")) ==
        "The model card has no \"kl_set.threshold\" field.");
  CHECK(parse_error(card_with("\"coverage\": 0.9", "\"coverage\": \"90%\"")) ==
        "The model card field \"kl_set.coverage\" must be a number.");
}

TEST_CASE("out-of-range values", "[card][errors]") {
  CHECK(parse_error(card_with("\"input_size\": 224", "\"input_size\": 0")) ==
        "The model card field \"preprocess.input_size\" must be a whole number from 1 to 4096.");
  CHECK(parse_error(card_with("\"layout\": \"NCHW\"", "\"layout\": \"NHWC\"")) ==
        "The model card field \"preprocess.layout\" must be \"NCHW\" (the only layout the core produces).");
  CHECK(parse_error(card_with("\"std\": [0.5, 0.5, 0.5]", "\"std\": [0.5, 0, 0.5]")) ==
        "The model card field \"preprocess.std\" must be positive numbers.");
  CHECK(parse_error(card_with("[0.5, 99.5]", "[99.5, 0.5]")) ==
        "The model card field \"preprocess.window_percentiles\" must be two percentiles with 0 <= low < high <= 100.");
  CHECK(parse_error(card_with("\"border_max_fraction\": 0.25", "\"border_max_fraction\": 0.5")) ==
        "The model card field \"preprocess.border_max_fraction\" must be at least 0 and below 0.5.");
  CHECK(parse_error(card_with("\"fit\": \"center_crop\"", "\"fit\": \"pad\"")) ==
        "The model card field \"preprocess.fit\" must be \"center_crop\" (the only fit the core supports).");
  CHECK(parse_error(card_with("\"max_colour\": 1", "\"max_colour\": 0")) ==
        "The model card field \"preprocess.radiograph.max_colour\" must be above 0 and at most 1 (1 refuses no colour).");
  CHECK(parse_error(card_with("\"max_roughness\": 2", "\"max_roughness\": 2.5")) ==
        "The model card field \"preprocess.radiograph.max_roughness\" must be above 0 and at most 2 (2 refuses no "
        "picture).");
  CHECK(parse_error(card_with("\"threshold\": 2}", "\"threshold\": -1}")) ==
        "The model card field \"preprocess.localise.polarity.threshold\" must be a number of at least 0 (a crop turns "
        "when its weighted measures sum to -threshold or less).");
  CHECK(parse_error(card_with("\"skew\": 0, ", "")) == "The model card has no \"preprocess.localise.polarity.skew\" field.");
  CHECK(parse_error(card_with("\"radiograph\"", "\"radiography\"")) ==
        "The model card has no \"preprocess.radiograph.max_colour\" field.");
  CHECK(parse_error(card_with("\"oa_bias\": 0.0, ", "")) == "The model card has no \"calibration.oa_bias\" field.");
  CHECK(parse_error(card_with("\"kl_temperature\": 1.0", "\"kl_temperature\": -1")) ==
        "The model card field \"calibration.kl_temperature\" must be a positive number.");
  CHECK(parse_error(card_with("\"threshold\": 0.5", "\"threshold\": 1.5")) ==
        "The model card field \"threshold\" must be a probability from 0 to 1.");
  CHECK(parse_error(card_with("\"coverage\": 0.9", "\"coverage\": 90")) ==
        "The model card field \"kl_set.coverage\" must be a probability above 0 and at most 1.");
  CHECK(parse_error(card_with("\"coverage\": 0.9", "\"coverage\": 0")) ==
        "The model card field \"kl_set.coverage\" must be a probability above 0 and at most 1.");
  CHECK(parse_error(card_with("\"threshold\": 0.8", "\"threshold\": -0.1")) ==
        "The model card field \"kl_set.threshold\" must be a cumulative probability from 0 to 1.");
  CHECK(parse_error(card_with("\"threshold\": 0.8", "\"threshold\": 1.0000001")) ==
        "The model card field \"kl_set.threshold\" must be a cumulative probability from 0 to 1.");
  CHECK(parse_error(card_with("\"threshold\": 0.8", "\"threshold\": 0")).empty());
}

TEST_CASE("the KL grade rule", "[card][kl_grade]") {
  const std::string by_cuts = card_with("{\"rule\": \"argmax\"}", "{\"rule\": \"cut_points\", \"cut_points\": [0.9, 1.4, 2.2, 3.3]}");
  const oac::ModelSpec spec = spec_from(by_cuts);
  CHECK(spec.kl_grade.by_cut_points);
  CHECK(spec.kl_grade.cut_points == std::array<double, 4>{0.9, 1.4, 2.2, 3.3});
  CHECK(parse_error(card_with("\"kl_grade\": {\"rule\": \"argmax\"},", "")) ==
        "The model card has no \"kl_grade.rule\" field.");
  CHECK(parse_error(card_with("\"rule\": \"argmax\"", "\"rule\": \"mean\"")) ==
        "The model card field \"kl_grade.rule\" must be \"argmax\" or \"cut_points\".");
  CHECK(parse_error(card_with("{\"rule\": \"argmax\"}", "{\"rule\": \"cut_points\"}")) ==
        "The model card has no \"kl_grade.cut_points\" field.");
  CHECK(parse_error(card_with("{\"rule\": \"argmax\"}", "{\"rule\": \"cut_points\", \"cut_points\": [1.4, 0.9, 2.2, 3.3]}")) ==
        "The model card field \"kl_grade.cut_points\" must be four ascending numbers from 0 to 4.");
  CHECK(parse_error(card_with("{\"rule\": \"argmax\"}", "{\"rule\": \"cut_points\", \"cut_points\": [0.5, 1.5, 2.5, 4.5]}")) ==
        "The model card field \"kl_grade.cut_points\" must be four ascending numbers from 0 to 4.");
}
