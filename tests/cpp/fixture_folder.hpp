#pragma once
// Test inputs generated at test time into folders beside the test binary's working directory
// (tests/dicom/CMakeLists.txt runs the generators first). The WebAssembly build reads them
// through Node's file system (-sNODERAWFS), so the same code runs in both builds.

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "json.hpp"  // the core's JSON reader (wasm/src)
#include "test_support.hpp"

namespace oac_test {

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline nlohmann::json read_json(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  oac::Result<nlohmann::json> parsed = oac::json::parse({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
  INFO(path << ": " << (parsed ? "" : parsed.error().message));
  REQUIRE(parsed.ok());
  return std::move(parsed).value();
}

inline const nlohmann::json& member(const nlohmann::json& object, const char* key) {
  const auto found = object.find(key);
  INFO("missing key " << key);
  REQUIRE(found != object.end());
  return *found;
}

// The product's preprocessing from models/oa-inceptionv3.json (OAC_MODEL_CARD_PATH, set by CMake).
inline oac::PreprocessSpec product_preprocess() {
  const std::vector<uint8_t> card = read_file(OAC_MODEL_CARD_PATH);
  oac::Result<oac::ModelSpec> spec = oac::parse_model_card({reinterpret_cast<const char*>(card.data()), card.size()});
  REQUIRE(spec.ok());
  return spec.value().preprocess;
}

inline oac::Result<oac::RawImage> decode_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return oac::decode(bytes.data(), bytes.size());
}

}  // namespace oac_test
