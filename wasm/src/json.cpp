#include "json.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace oac::json {
namespace {

using nlohmann::json;

// Cards nest three levels. nlohmann::json parses and destroys without recursion but copies and compares
// recursively, so a document nested far deeper is refused before it becomes a tree.
constexpr size_t kMaxDepth = 64;

// " at line L, column C" for the character at `offset` (the end of the text counts as one more).
std::string where(std::string_view text, size_t offset) {
  const std::string_view before = text.substr(0, offset);
  const size_t line = static_cast<size_t>(std::count(before.begin(), before.end(), '\n')) + 1;
  const size_t newline = before.rfind('\n');
  const size_t column = newline == std::string_view::npos ? offset + 1 : offset - newline;
  return " at line " + std::to_string(line) + ", column " + std::to_string(column);
}

// The first '{' or '[' opened inside kMaxDepth others. The parser stopped there, so the text before it is
// valid JSON and its brackets outside strings are its nesting.
size_t too_deep_at(std::string_view text) {
  size_t open = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (open++ > kMaxDepth) return i;
    } else if (c == '}' || c == ']') {
      --open;
    }
  }
  return text.size();
}

// nlohmann's description of a problem without its tag ("[json.exception.parse_error.101] ") and, for
// syntax errors, its "parse error at line L, column C: ": where() states the position of every problem,
// also of those nlohmann gives none for (a number out of range).
std::string describe(const json::exception& error) {
  std::string_view text = error.what();
  text.remove_prefix(text.find("] ") + 2);
  if (text.rfind("parse error", 0) == 0) text.remove_prefix(text.find(": ") + 2);
  return std::string(text);
}

// Builds the document from nlohmann's SAX events; the first problem stops the parse and is kept.
class DocumentBuilder final : public nlohmann::json_sax<json> {
 public:
  bool null() override { return add(nullptr); }
  bool boolean(bool value) override { return add(value); }
  bool number_integer(number_integer_t value) override { return add(value); }
  bool number_unsigned(number_unsigned_t value) override { return add(value); }
  bool number_float(number_float_t value, const string_t&) override { return add(value); }
  bool string(string_t& value) override { return add(std::move(value)); }
  bool binary(binary_t& value) override { return add(std::move(value)); }
  bool start_object(size_t) override { return open(json::object()); }
  bool key(string_t& name) override {
    key_ = std::move(name);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(size_t) override { return open(json::array()); }
  bool end_array() override { return close(); }

  bool parse_error(size_t characters_read, const std::string&, const json::exception& error) override {
    problem_ = describe(error);
    problem_at_ = characters_read - 1;
    return false;
  }

  json take_document() { return std::move(document_); }

  std::string problem(std::string_view text) const {
    if (too_deep_) return "values are nested too deeply" + where(text, too_deep_at(text));
    return problem_ + where(text, problem_at_);
  }

 private:
  bool add(json value) {
    place(std::move(value));
    return true;
  }

  bool open(json container) {
    if (open_.size() > kMaxDepth) {
      too_deep_ = true;
      return false;
    }
    // Stays valid: nothing is added to a container's parent until the container is closed.
    open_.push_back(&place(std::move(container)));
    return true;
  }

  bool close() {
    open_.pop_back();
    return true;
  }

  json& place(json value) {
    if (open_.empty()) return document_ = std::move(value);
    json& parent = *open_.back();
    if (parent.is_object()) return parent[key_] = std::move(value);
    parent.push_back(std::move(value));
    return parent.back();
  }

  json document_;
  std::vector<json*> open_;  // the containers being filled, outermost first
  std::string key_;
  bool too_deep_ = false;
  std::string problem_;
  size_t problem_at_ = 0;
};

}  // namespace

Result<nlohmann::json> parse(std::string_view text) {
  DocumentBuilder builder;
  if (json::sax_parse(text, &builder)) return builder.take_document();
  return Error{builder.problem(text)};
}

}  // namespace oac::json
