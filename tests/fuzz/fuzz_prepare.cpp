// libFuzzer target: the whole preprocessing (decode -> canonicalise -> to_tensor) with the product's
// model card, as the page, the CLI and training run it.

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
  (void)oac::prepare(data, size, spec, oac_fuzz::kLimits);
  return 0;
}
