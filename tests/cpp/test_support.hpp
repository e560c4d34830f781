#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "fixture_files.hpp"
#include "oac/oac.hpp"

namespace oac_test {

inline oac::Result<oac::RawImage> decode_bytes(const std::vector<uint8_t>& bytes, const oac::Limits& limits = {}) {
  return oac::decode(bytes.data(), bytes.size(), limits);
}

// The error message of a failed result ("" if it succeeded), for exact-message checks.
template <typename T>
std::string error_of(const oac::Result<T>& result) {
  return result ? std::string() : result.error().message;
}

inline oac::ModelSpec product_spec() {
  oac::Result<oac::ModelSpec> spec = oac::parse_model_card(fixtures::model_card);
  REQUIRE(error_of(spec).empty());
  return spec.value();
}

inline oac::RawImage grey_raw(int width, int height, const std::vector<uint16_t>& values, int bit_depth = 8) {
  return oac::RawImage{width, height, 1, bit_depth, values};
}

}  // namespace oac_test
