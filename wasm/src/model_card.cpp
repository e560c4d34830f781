#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "json.hpp"
#include "oac/model_card.hpp"

namespace oac {
namespace {

// Reads fields by dotted path and remembers the first problem, so the parser below
// reads as a list of fields instead of a ladder of early returns.
class CardReader {
 public:
  explicit CardReader(const nlohmann::json& root) : root_(root) {}

  double number(const std::string& path) {
    const nlohmann::json* value = field(path);
    if (value == nullptr) return 0;
    if (!value->is_number()) return wrong_type(path, "a number");
    return value->get<double>();
  }

  int whole_number(const std::string& path) {
    const double value = number(path);
    if (value != std::floor(value) || std::fabs(value) > 1e9) return wrong_type(path, "a whole number");
    return static_cast<int>(value);
  }

  std::string text(const std::string& path) {
    const nlohmann::json* value = field(path);
    if (value == nullptr) return {};
    if (!value->is_string()) {
      wrong_type(path, "a string");
      return {};
    }
    return value->get<std::string>();
  }

  template <size_t N>
  std::array<double, N> numbers(const std::string& path) {
    std::array<double, N> out{};
    const nlohmann::json* value = field(path);
    if (value == nullptr) return out;
    const bool all_numbers = value->is_array() && value->size() == N &&
                             std::all_of(value->begin(), value->end(),
                                         [](const nlohmann::json& item) { return item.is_number(); });
    if (!all_numbers) {
      wrong_type(path, "a list of " + std::to_string(N) + " numbers");
      return out;
    }
    for (size_t i = 0; i < N; ++i) out[i] = (*value)[i].get<double>();
    return out;
  }

  // A picture written as one string of hexadecimal bytes per row (0-255 for 0-1): compact and
  // still readable in the card, row by row.
  std::vector<float> hex_rows(const std::string& path) {
    const nlohmann::json* value = field(path);
    if (value == nullptr) return {};
    std::vector<float> out;
    const auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c | 0x20) - 'a' + 10; };
    const bool rows_of_text = value->is_array() &&
                              std::all_of(value->begin(), value->end(), [](const nlohmann::json& item) {
                                if (!item.is_string()) return false;
                                const std::string& row = item.get_ref<const std::string&>();
                                return row.size() % 2 == 0 && std::all_of(row.begin(), row.end(), [](char c) {
                                         return std::isxdigit(static_cast<unsigned char>(c));
                                       });
                              });
    if (!rows_of_text) {
      wrong_type(path, "a list of rows, each a string of hexadecimal bytes");
      return {};
    }
    for (const nlohmann::json& item : *value) {
      const std::string& row = item.get_ref<const std::string&>();
      for (size_t i = 0; i < row.size(); i += 2) {
        out.push_back(static_cast<float>(digit(row[i]) * 16 + digit(row[i + 1])) / 255.0f);
      }
    }
    return out;
  }

  // Records `requirement` as the problem with `path` unless `satisfied`.
  void require(bool satisfied, const std::string& path, const std::string& requirement) {
    if (!satisfied) note("The model card field \"" + path + "\" must be " + requirement + ".");
  }

  const std::optional<Error>& problem() const { return problem_; }

 private:
  const nlohmann::json* field(const std::string& path) {
    const nlohmann::json* node = &root_;
    size_t start = 0;
    while (node != nullptr) {
      const size_t dot = path.find('.', start);
      const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      const auto found = node->find(key);  // end() also when node is not an object
      node = found == node->end() ? nullptr : &*found;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (node == nullptr) note("The model card has no \"" + path + "\" field.");
    return node;
  }

  int wrong_type(const std::string& path, const std::string& expected) {
    note("The model card field \"" + path + "\" must be " + expected + ".");
    return 0;
  }

  void note(std::string message) {
    if (!problem_) problem_ = Error{std::move(message)};
  }

  const nlohmann::json& root_;
  std::optional<Error> problem_;
};

}  // namespace

Result<ModelSpec> parse_model_card(std::string_view json_text) {
  Result<nlohmann::json> document = json::parse(json_text);
  if (!document) return Error{"The model card is not valid JSON: " + document.error().message + "."};
  if (!document.value().is_object()) return Error{"The model card must be a JSON object."};

  CardReader card(document.value());
  ModelSpec spec;
  PreprocessSpec& pre = spec.preprocess;
  pre.input_size = card.whole_number("preprocess.input_size");
  pre.layout = card.text("preprocess.layout");
  pre.mean = card.numbers<3>("preprocess.mean");
  pre.stddev = card.numbers<3>("preprocess.std");
  pre.window_percentiles = card.numbers<2>("preprocess.window_percentiles");
  pre.border_tolerance = card.number("preprocess.border_tolerance");
  pre.border_max_fraction = card.number("preprocess.border_max_fraction");
  pre.bilateral_min_aspect = card.number("preprocess.bilateral_min_aspect");
  pre.fit = card.text("preprocess.fit");
  LocaliseSpec& localise = pre.localise;
  localise.template_size = card.whole_number("preprocess.localise.template_size");
  localise.knee_template = card.hex_rows("preprocess.localise.template");
  localise.smallest_knee = card.number("preprocess.localise.smallest_knee");
  localise.min_knee_pixels = card.whole_number("preprocess.localise.min_knee_pixels");
  localise.scale_steps = card.whole_number("preprocess.localise.scale_steps");
  localise.min_score = card.number("preprocess.localise.min_score");
  localise.pair_min_score = card.number("preprocess.localise.pair_min_score");
  localise.joint_crop_fraction = card.number("preprocess.localise.joint_crop_fraction");
  localise.polarity = {card.number("preprocess.localise.polarity.profile"),
                       card.number("preprocess.localise.polarity.frame"),
                       card.number("preprocess.localise.polarity.brightness"),
                       card.number("preprocess.localise.polarity.skew"),
                       card.number("preprocess.localise.polarity.threshold")};
  pre.radiograph.max_colour = card.number("preprocess.radiograph.max_colour");
  pre.radiograph.max_roughness = card.number("preprocess.radiograph.max_roughness");
  spec.calibration.oa_temperature = card.number("calibration.oa_temperature");
  spec.calibration.oa_bias = card.number("calibration.oa_bias");
  spec.calibration.kl_temperature = card.number("calibration.kl_temperature");
  spec.threshold = card.number("threshold");
  const std::string grade_rule = card.text("kl_grade.rule");
  spec.kl_grade.by_cut_points = grade_rule == "cut_points";
  if (spec.kl_grade.by_cut_points) spec.kl_grade.cut_points = card.numbers<4>("kl_grade.cut_points");
  spec.kl_set.coverage = card.number("kl_set.coverage");
  spec.kl_set.threshold = card.number("kl_set.threshold");
  spec.ood.threshold = card.number("ood.threshold");
  if (card.problem()) return *card.problem();

  card.require(pre.input_size >= 1 && pre.input_size <= 4096, "preprocess.input_size",
               "a whole number from 1 to 4096");
  card.require(pre.layout == "NCHW", "preprocess.layout", "\"NCHW\" (the only layout the core produces)");
  for (double deviation : pre.stddev) card.require(deviation > 0, "preprocess.std", "positive numbers");
  const auto [low, high] = pre.window_percentiles;
  card.require(low >= 0 && low < high && high <= 100, "preprocess.window_percentiles",
               "two percentiles with 0 <= low < high <= 100");
  card.require(pre.border_tolerance >= 0 && pre.border_tolerance < 0.5, "preprocess.border_tolerance",
               "at least 0 and below 0.5");
  card.require(pre.border_max_fraction >= 0 && pre.border_max_fraction < 0.5, "preprocess.border_max_fraction",
               "at least 0 and below 0.5");
  card.require(pre.bilateral_min_aspect > 0, "preprocess.bilateral_min_aspect", "a positive number");
  card.require(pre.fit == "center_crop", "preprocess.fit", "\"center_crop\" (the only fit the core supports)");
  card.require(localise.template_size >= 2 && localise.template_size <= 256, "preprocess.localise.template_size",
               "a whole number from 2 to 256");
  card.require(localise.knee_template.size() == static_cast<size_t>(localise.template_size) * localise.template_size,
               "preprocess.localise.template", "template_size rows of template_size hexadecimal bytes");
  card.require(localise.smallest_knee > 0 && localise.smallest_knee <= 1, "preprocess.localise.smallest_knee",
               "above 0 and at most 1");
  card.require(localise.min_knee_pixels >= localise.template_size, "preprocess.localise.min_knee_pixels",
               "at least template_size");
  card.require(localise.scale_steps >= 1 && localise.scale_steps <= 100, "preprocess.localise.scale_steps",
               "a whole number from 1 to 100");
  card.require(localise.pair_min_score <= localise.min_score, "preprocess.localise.pair_min_score",
               "at most min_score");
  const LocaliseSpec::PolarityRule& polarity = localise.polarity;
  card.require(std::isfinite(polarity.profile) && std::isfinite(polarity.frame) && std::isfinite(polarity.brightness) &&
                   std::isfinite(polarity.skew),
               "preprocess.localise.polarity", "finite weights for profile, frame, brightness and skew");
  card.require(std::isfinite(polarity.threshold) && polarity.threshold >= 0, "preprocess.localise.polarity.threshold",
               "a number of at least 0 (a crop turns when its weighted measures sum to -threshold or less)");
  card.require(localise.joint_crop_fraction > 0 && localise.joint_crop_fraction <= 1,
               "preprocess.localise.joint_crop_fraction", "above 0 and at most 1");
  card.require(pre.radiograph.max_colour > 0 && pre.radiograph.max_colour <= 1, "preprocess.radiograph.max_colour",
               "above 0 and at most 1 (1 refuses no colour)");
  card.require(pre.radiograph.max_roughness > 0 && pre.radiograph.max_roughness <= 2,
               "preprocess.radiograph.max_roughness", "above 0 and at most 2 (2 refuses no picture)");
  card.require(spec.calibration.oa_temperature > 0, "calibration.oa_temperature", "a positive number");
  card.require(std::isfinite(spec.calibration.oa_bias), "calibration.oa_bias", "a finite number");
  card.require(spec.calibration.kl_temperature > 0, "calibration.kl_temperature", "a positive number");
  card.require(spec.threshold >= 0 && spec.threshold <= 1, "threshold", "a probability from 0 to 1");
  card.require(grade_rule == "argmax" || grade_rule == "cut_points", "kl_grade.rule",
               "\"argmax\" or \"cut_points\"");
  const auto& cuts = spec.kl_grade.cut_points;
  card.require(std::is_sorted(cuts.begin(), cuts.end()) && cuts.front() >= 0 && cuts.back() <= 4,
               "kl_grade.cut_points", "four ascending numbers from 0 to 4");
  card.require(spec.kl_set.coverage > 0 && spec.kl_set.coverage <= 1, "kl_set.coverage",
               "a probability above 0 and at most 1");
  card.require(spec.kl_set.threshold >= 0 && spec.kl_set.threshold <= 1, "kl_set.threshold",
               "a cumulative probability from 0 to 1");
  if (card.problem()) return *card.problem();
  return spec;
}

}  // namespace oac
