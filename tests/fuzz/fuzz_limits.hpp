#pragma once
// Shared by the fuzz targets. A lower pixel limit than the product's keeps each run fast and within
// libFuzzer's memory limit; the limit checks themselves are the same code either way.

#include "oac/oac.hpp"

namespace oac_fuzz {

inline constexpr oac::Limits kLimits{4'000'000, 16'000'000};

}  // namespace oac_fuzz
