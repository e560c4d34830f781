#pragma once
// Shared by the fuzz targets. Lower limits than the product's keep each execution fast and far from
// libFuzzer's memory limit; the limit checks themselves are the same code either way.

#include "oac/oac.hpp"

namespace oac_fuzz {

inline constexpr oac::Limits kLimits{512 * 512, 4'000'000};

}  // namespace oac_fuzz
