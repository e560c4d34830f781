// libFuzzer target: the encapsulated pixel data of the syntaxes a codec outside the core decodes. The fragment
// parser (basic offset table, fragments, frame boundaries) hands out frame 1, and the decoded-frame path takes
// samples of the size the header asks for and of a wrong size, as a codec might hand them back.

#include <vector>

#include "fuzz_limits.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const oac::Result<oac::CompressedFrame> frame = oac::compressed_frame(data, size, oac_fuzz::kLimits);
  if (!frame) return 0;
  const oac::CompressedFrame& found = frame.value();
  const size_t samples = static_cast<size_t>(found.rows) * found.columns * found.samples_per_pixel;
  // The codestream's bytes stand in for decoded values, so the display path sees whatever the input holds.
  std::vector<uint16_t> decoded(samples);
  for (size_t i = 0; i < samples && !found.codestream.empty(); ++i) {
    decoded[i] = static_cast<uint16_t>(found.codestream[i % found.codestream.size()] * 257u + i);
  }
  (void)oac::decode_dicom_with_frame(data, size, decoded, oac_fuzz::kLimits);
  decoded.pop_back();
  (void)oac::decode_dicom_with_frame(data, size, decoded, oac_fuzz::kLimits);
  return 0;
}
