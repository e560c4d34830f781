// libFuzzer target: oac::decode on any bytes (format sniffing, stb_image, DICOM).

#include "fuzz_limits.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)oac::decode(data, size, oac_fuzz::kLimits);
  return 0;
}
