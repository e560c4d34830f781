#pragma once
// The core's JSON reader (the model card; the tests' fixtures): nlohmann::json, driven through its SAX
// interface so that nothing throws, since the WebAssembly core has no exception support.

#include <nlohmann/json.hpp>
#include <string_view>

#include "oac/result.hpp"

namespace oac::json {

// The document (a repeated member name keeps its last value), or an Error that names the line and column
// of the first problem.
Result<nlohmann::json> parse(std::string_view text);

}  // namespace oac::json
