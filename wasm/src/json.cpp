#include "json.hpp"

#include <cstdint>
#include <locale>
#include <sstream>

namespace oac::json {

const Value* Value::find(std::string_view key) const {
  for (auto member = members.rbegin(); member != members.rend(); ++member) {
    if (member->first == key) return &member->second;
  }
  return nullptr;
}

namespace {

// Deep enough for any card, shallow enough that hostile input cannot exhaust the stack.
constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<Value> parse_document() {
    Value root;
    skip_whitespace();
    if (!parse_value(root, 0)) return failure();
    skip_whitespace();
    if (position_ != text_.size()) {
      fail("unexpected text after the end of the document");
      return failure();
    }
    return root;
  }

 private:
  bool parse_value(Value& out, int depth) {
    if (depth > kMaxDepth) return fail("values are nested too deeply");
    if (position_ >= text_.size()) return fail("unexpected end of text, expected a value");
    switch (text_[position_]) {
      case '{': return parse_object(out, depth);
      case '[': return parse_array(out, depth);
      case '"': out.kind = Value::Kind::string; return parse_string(out.string);
      case 't': out.kind = Value::Kind::boolean; out.boolean = true; return parse_literal("true");
      case 'f': out.kind = Value::Kind::boolean; out.boolean = false; return parse_literal("false");
      case 'n': out.kind = Value::Kind::null; return parse_literal("null");
      default: out.kind = Value::Kind::number; return parse_number(out.number);
    }
  }

  bool parse_object(Value& out, int depth) {
    out.kind = Value::Kind::object;
    ++position_;  // '{'
    skip_whitespace();
    if (consume('}')) return true;
    while (true) {
      skip_whitespace();
      if (position_ >= text_.size() || text_[position_] != '"') return fail("expected a quoted member name");
      std::string key;
      if (!parse_string(key)) return false;
      skip_whitespace();
      if (!consume(':')) return fail("expected ':' after a member name");
      skip_whitespace();
      Value member;
      if (!parse_value(member, depth + 1)) return false;
      out.members.emplace_back(std::move(key), std::move(member));
      skip_whitespace();
      if (consume('}')) return true;
      if (!consume(',')) return fail("expected ',' or '}' in an object");
    }
  }

  bool parse_array(Value& out, int depth) {
    out.kind = Value::Kind::array;
    ++position_;  // '['
    skip_whitespace();
    if (consume(']')) return true;
    while (true) {
      skip_whitespace();
      Value item;
      if (!parse_value(item, depth + 1)) return false;
      out.items.push_back(std::move(item));
      skip_whitespace();
      if (consume(']')) return true;
      if (!consume(',')) return fail("expected ',' or ']' in an array");
    }
  }

  bool parse_literal(std::string_view literal) {
    if (text_.substr(position_, literal.size()) != literal) return fail("unknown word, expected a value");
    position_ += literal.size();
    return true;
  }

  bool parse_number(double& out) {
    const size_t start = position_;
    consume('-');
    if (consume('0')) {
      // a leading zero stands alone
    } else if (!consume_digits()) {
      return fail("expected a value");
    }
    if (consume('.') && !consume_digits()) return fail("expected digits after the decimal point");
    if (consume('e') || consume('E')) {
      if (!consume('+')) consume('-');
      if (!consume_digits()) return fail("expected digits in the exponent");
    }
    // The classic locale keeps '.' as the decimal point whatever the host process set.
    std::istringstream stream(std::string(text_.substr(start, position_ - start)));
    stream.imbue(std::locale::classic());
    stream >> out;
    if (stream.fail()) {
      position_ = start;
      return fail("number out of range");
    }
    return true;
  }

  bool parse_string(std::string& out) {
    ++position_;  // opening quote
    while (position_ < text_.size()) {
      const char c = text_[position_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character inside a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (position_ >= text_.size()) break;
      const char escape = text_[position_++];
      switch (escape) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': if (!parse_unicode_escape(out)) return false; break;
        default: return fail("unknown escape sequence in a string");
      }
    }
    return fail("unterminated string");
  }

  bool parse_unicode_escape(std::string& out) {
    uint32_t code = 0;
    if (!parse_hex4(code)) return false;
    if (code >= 0xd800 && code < 0xdc00) {
      uint32_t low = 0;
      if (!consume('\\') || !consume('u') || !parse_hex4(low) || low < 0xdc00 || low >= 0xe000) {
        return fail("unpaired UTF-16 surrogate in a string");
      }
      code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
    } else if (code >= 0xdc00 && code < 0xe000) {
      return fail("unpaired UTF-16 surrogate in a string");
    }
    append_utf8(code, out);
    return true;
  }

  bool parse_hex4(uint32_t& out) {
    if (text_.size() - position_ < 4) return fail("expected four hex digits after \\u");
    for (int i = 0; i < 4; ++i) {
      const char c = text_[position_++];
      out <<= 4;
      if (c >= '0' && c <= '9') out |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') out |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') out |= static_cast<uint32_t>(c - 'A' + 10);
      else return fail("expected four hex digits after \\u");
    }
    return true;
  }

  static void append_utf8(uint32_t code, std::string& out) {
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    }
  }

  bool consume_digits() {
    const size_t start = position_;
    while (position_ < text_.size() && text_[position_] >= '0' && text_[position_] <= '9') ++position_;
    return position_ > start;
  }

  bool consume(char expected) {
    if (position_ < text_.size() && text_[position_] == expected) {
      ++position_;
      return true;
    }
    return false;
  }

  void skip_whitespace() {
    while (position_ < text_.size() &&
           (text_[position_] == ' ' || text_[position_] == '\t' || text_[position_] == '\n' || text_[position_] == '\r')) {
      ++position_;
    }
  }

  bool fail(const char* problem) {
    if (problem_.empty()) {
      problem_ = problem;
      problem_position_ = position_;
    }
    return false;
  }

  Error failure() const {
    int line = 1;
    int column = 1;
    for (size_t i = 0; i < problem_position_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return Error{problem_ + " at line " + std::to_string(line) + ", column " + std::to_string(column)};
  }

  std::string_view text_;
  size_t position_ = 0;
  std::string problem_;
  size_t problem_position_ = 0;
};

}  // namespace

Result<Value> parse(std::string_view text) { return Parser(text).parse_document(); }

}  // namespace oac::json
