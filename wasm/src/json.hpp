#pragma once
// A small, strict JSON reader (RFC 8259) for the model card; numbers are doubles.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "oac/result.hpp"

namespace oac::json {

struct Value {
  enum class Kind { null, boolean, number, string, array, object };

  Kind kind = Kind::null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Value> items;                            // array elements
  std::vector<std::pair<std::string, Value>> members;  // object members in document order

  // The member named `key` (the last one if repeated), or nullptr.
  const Value* find(std::string_view key) const;
};

// The error message names the line and column of the first problem.
Result<Value> parse(std::string_view text);

}  // namespace oac::json
