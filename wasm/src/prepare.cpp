#include "oac/preprocess.hpp"

namespace oac {

Result<std::vector<PreparedKnee>> prepare(const uint8_t* data, size_t size, const PreprocessSpec& spec,
                                          const Limits& limits) {
  Result<RawImage> raw = decode(data, size, limits);
  if (!raw) return raw.error();
  Result<std::vector<Knee>> knees = canonicalise(raw.value(), spec);
  if (!knees) return knees.error();
  std::vector<PreparedKnee> prepared;
  for (Knee& knee : knees.value()) {
    std::vector<float> tensor = to_tensor(knee.image, spec);
    prepared.push_back({std::move(knee.side), std::move(knee.image), std::move(tensor), raw.value().metadata});
  }
  return prepared;
}

}  // namespace oac
