// libFuzzer target: the DICOM reader and the DICOMDIR reader on any bytes, without the "looks like DICOM" gate in
// front, so that mutations of the preamble and meta header still reach the parser.

#include "fuzz_limits.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)oac::decode_dicom(data, size, oac_fuzz::kLimits);
  (void)oac::read_dicomdir(data, size);
  return 0;
}
