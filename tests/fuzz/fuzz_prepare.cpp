// libFuzzer target: the whole preprocessing (decode -> canonicalise -> to_tensor) with the product's
// model card, as the page, the CLI and training run it, then the page's views of every knee: the crop
// fitted to a display size and the heatmap over it (the CAM here is derived from the tensor).

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz_limits.hpp"

namespace {

oac::PreprocessSpec load_product_spec() {
  std::ifstream in(OAC_MODEL_CARD_PATH, std::ios::binary);
  const std::string card{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  oac::Result<oac::ModelSpec> spec = oac::parse_model_card(card);
  if (!spec) {
    std::fprintf(stderr, "fuzz_prepare: %s: %s\n", OAC_MODEL_CARD_PATH, spec.error().message.c_str());
    std::abort();
  }
  return spec.value().preprocess;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const oac::PreprocessSpec spec = load_product_spec();
  oac::Result<std::vector<oac::PreparedKnee>> knees = oac::prepare(data, size, spec, oac_fuzz::kLimits);
  if (!knees) return 0;
  constexpr int kCamSide = 5;  // InceptionV3's last feature map at 224 px is 5 x 5
  for (const oac::PreparedKnee& knee : knees.value()) {
    // The display size comes from the input too, so shrinking, keeping and odd sizes all happen.
    const int max_side = 1 + static_cast<int>(data[size / 2] % 64) * 8;
    const oac::GrayImage shown = oac::fit_for_display(knee.crop, max_side);
    (void)oac::grey_rgba(shown);
    (void)oac::render_cam(shown, knee.tensor.data(), kCamSide, kCamSide, 0.6f);
  }
  return 0;
}
