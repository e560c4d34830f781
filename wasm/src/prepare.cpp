#include "oac/preprocess.hpp"

namespace oac {

PreparedKnee prepare_knee(Knee knee, const ImageMetadata& metadata, const PreprocessSpec& spec) {
  std::vector<float> tensor = to_tensor(knee.image, spec);
  return {std::move(knee.side), std::move(knee.patient_side), knee.box, std::move(knee.image), knee.inverted,
          std::move(tensor), metadata};
}

std::vector<float> self_test_tensor(const PreprocessSpec& spec) {
  const LocaliseSpec& localise = spec.localise;
  return to_tensor(GrayImage{localise.template_size, localise.template_size, localise.knee_template}, spec);
}

Result<PreparedImage> prepare_decoded(const RawImage& raw, const PreprocessSpec& spec) {
  Result<GrayImage> windowed = window_image(raw, spec);
  if (!windowed) return windowed.error();
  PreparedImage prepared{std::move(windowed).value(), raw.metadata, {}};
  for (Knee& knee : find_knees(prepared.windowed, prepared.metadata, spec)) {
    prepared.knees.push_back(prepare_knee(std::move(knee), prepared.metadata, spec));
  }
  return prepared;
}

Result<PreparedImage> prepare_image(const uint8_t* data, size_t size, const PreprocessSpec& spec,
                                    const Limits& limits) {
  Result<RawImage> raw = decode(data, size, limits);
  if (!raw) return raw.error();
  return prepare_decoded(raw.value(), spec);
}

Result<std::vector<PreparedKnee>> prepare(const uint8_t* data, size_t size, const PreprocessSpec& spec,
                                          const Limits& limits) {
  Result<PreparedImage> prepared = prepare_image(data, size, spec, limits);
  if (!prepared) return prepared.error();
  if (prepared.value().knees.empty()) return Error{kNoKneeFound};
  return std::move(prepared.value().knees);
}

}  // namespace oac
