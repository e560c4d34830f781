// Writes the tensors oac::prepare makes for each image, for the cross-build parity test
// (tests/python/core/test_core_parity.py): OUTPUT_DIR/<i>.f32 holds the float32 tensors of the
// i-th image's knees, concatenated in order.

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "oac/oac.hpp"

namespace {

bool read_file(const char* path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL_CARD OUTPUT_DIR IMAGE...\n", argv[0]);
    return 2;
  }
  std::string card;
  if (!read_file(argv[1], card)) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  const oac::Result<oac::ModelSpec> spec = oac::parse_model_card(card);
  if (!spec) {
    std::fprintf(stderr, "%s\n", spec.error().message.c_str());
    return 1;
  }
  for (int i = 3; i < argc; ++i) {
    std::string bytes;
    if (!read_file(argv[i], bytes)) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 1;
    }
    const auto prepared =
        oac::prepare(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), spec.value().preprocess);
    if (!prepared) {
      std::fprintf(stderr, "%s: %s\n", argv[i], prepared.error().message.c_str());
      return 1;
    }
    std::ofstream out(std::string(argv[2]) + "/" + std::to_string(i - 3) + ".f32", std::ios::binary);
    for (const oac::PreparedKnee& knee : prepared.value()) {
      out.write(reinterpret_cast<const char*>(knee.tensor.data()),
                static_cast<std::streamsize>(knee.tensor.size() * sizeof(float)));
    }
  }
  return 0;
}
