// Python module `oac_core`: numpy in and out, core errors raised as ValueError.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "oac/oac.hpp"

namespace py = pybind11;

namespace {

template <typename T>
T unwrap(oac::Result<T>&& result) {
  if (!result) throw py::value_error(result.error().message);
  return std::move(result).value();
}

// Hands the vector's storage to numpy without copying it.
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule owner(owned, [](void* pointer) { delete static_cast<std::vector<T>*>(pointer); });
  return py::array_t<T>(shape, owned->data(), owner);
}

py::array_t<float> to_numpy(oac::GrayImage&& image) {
  return to_numpy(std::move(image.pixels), {image.height, image.width});
}

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

oac::GrayImage gray_image_from(const FloatArray& array) {
  if (array.ndim() != 2) throw py::value_error("The image must be a 2-D array (height, width).");
  oac::GrayImage image;
  image.height = static_cast<int>(array.shape(0));
  image.width = static_cast<int>(array.shape(1));
  if (image.width <= 0 || image.height <= 0) throw py::value_error("The image has no pixels.");
  image.pixels.assign(array.data(), array.data() + array.size());
  return image;
}

oac::Limits limits_from(uint64_t max_pixels, uint64_t max_bytes) { return oac::Limits{max_pixels, max_bytes}; }

// Accepts bytes, bytearray, memoryview or a uint8 numpy array.
std::string_view bytes_of(const py::buffer& data, py::buffer_info& info) {
  info = data.request();
  if (info.ndim != 1 || info.itemsize != 1 || (info.size > 0 && info.strides[0] != 1)) {
    throw py::value_error("The file contents must be contiguous bytes.");
  }
  return {static_cast<const char*>(info.ptr), static_cast<size_t>(info.size)};
}

// "pixel_spacing_mm": (between rows, between columns) or None; "laterality": "L", "R", "B", "U" or "".
void add_metadata(py::dict& out, const oac::ImageMetadata& metadata) {
  out["pixel_spacing_mm"] = metadata.pixel_spacing_mm ? py::object(py::make_tuple((*metadata.pixel_spacing_mm)[0],
                                                                                  (*metadata.pixel_spacing_mm)[1]))
                                                      : py::object(py::none());
  out["laterality"] = metadata.laterality;
}

py::dict raw_image_dict(oac::RawImage&& image) {
  py::dict out;
  out["width"] = image.width;
  out["height"] = image.height;
  out["channels"] = image.channels;
  out["bit_depth"] = image.bit_depth;
  const std::vector<py::ssize_t> shape = {image.height, image.width, image.channels};
  out["pixels"] = to_numpy(std::move(image.samples), shape);
  add_metadata(out, image.metadata);
  return out;
}

oac::RawImage raw_image_from(const py::dict& image) {
  const auto pixels =
      image["pixels"].cast<py::array_t<uint16_t, py::array::c_style | py::array::forcecast>>();
  if (pixels.ndim() != 2 && pixels.ndim() != 3) {
    throw py::value_error("The image pixels must have shape (height, width) or (height, width, channels).");
  }
  oac::RawImage raw;
  raw.height = static_cast<int>(pixels.shape(0));
  raw.width = static_cast<int>(pixels.shape(1));
  raw.channels = pixels.ndim() == 3 ? static_cast<int>(pixels.shape(2)) : 1;
  raw.bit_depth = image["bit_depth"].cast<int>();
  raw.samples.assign(pixels.data(), pixels.data() + pixels.size());
  return raw;
}

const uint64_t kDefaultMaxPixels = oac::Limits{}.max_pixels;
const uint64_t kDefaultMaxBytes = oac::Limits{}.max_bytes;

py::list box_list(const oac::Box& box) { return py::cast(std::vector<int>{box.x0, box.y0, box.x1, box.y1}); }

}  // namespace

PYBIND11_MODULE(oac_core, m) {
  m.doc() = "Knee X-ray image core: decode, canonicalise, tensor, interpret, CAM rendering.";

  py::class_<oac::PreprocessSpec>(m, "PreprocessSpec")
      .def_readwrite("input_size", &oac::PreprocessSpec::input_size)
      .def_readwrite("layout", &oac::PreprocessSpec::layout)
      .def_readwrite("mean", &oac::PreprocessSpec::mean)
      .def_readwrite("std", &oac::PreprocessSpec::stddev)
      .def_readwrite("window_percentiles", &oac::PreprocessSpec::window_percentiles)
      .def_readwrite("border_tolerance", &oac::PreprocessSpec::border_tolerance)
      .def_readwrite("border_max_fraction", &oac::PreprocessSpec::border_max_fraction)
      .def_readwrite("bilateral_min_aspect", &oac::PreprocessSpec::bilateral_min_aspect)
      .def_readwrite("fit", &oac::PreprocessSpec::fit)
      .def_readwrite("radiograph", &oac::PreprocessSpec::radiograph);
  py::class_<oac::RadiographSpec>(m, "RadiographSpec")
      .def_readwrite("max_colour", &oac::RadiographSpec::max_colour)
      .def_readwrite("max_roughness", &oac::RadiographSpec::max_roughness);
  py::class_<oac::CalibrationSpec>(m, "CalibrationSpec")
      .def_readwrite("oa_temperature", &oac::CalibrationSpec::oa_temperature)
      .def_readwrite("oa_bias", &oac::CalibrationSpec::oa_bias)
      .def_readwrite("kl_temperature", &oac::CalibrationSpec::kl_temperature);
  py::class_<oac::OodSpec>(m, "OodSpec").def_readwrite("threshold", &oac::OodSpec::threshold);
  py::class_<oac::KlGradeSpec>(m, "KlGradeSpec")
      .def_readwrite("by_cut_points", &oac::KlGradeSpec::by_cut_points)
      .def_readwrite("cut_points", &oac::KlGradeSpec::cut_points);
  py::class_<oac::KlSetSpec>(m, "KlSetSpec")
      .def_readwrite("coverage", &oac::KlSetSpec::coverage)
      .def_readwrite("threshold", &oac::KlSetSpec::threshold);
  py::class_<oac::ModelSpec>(m, "ModelSpec")
      .def_readwrite("preprocess", &oac::ModelSpec::preprocess)
      .def_readwrite("calibration", &oac::ModelSpec::calibration)
      .def_readwrite("threshold", &oac::ModelSpec::threshold)
      .def_readwrite("kl_grade", &oac::ModelSpec::kl_grade)
      .def_readwrite("kl_set", &oac::ModelSpec::kl_set)
      .def_readwrite("ood", &oac::ModelSpec::ood);

  m.def(
      "parse_model_card", [](std::string_view text) { return unwrap(oac::parse_model_card(text)); },
      py::arg("text"), "Model card JSON text -> ModelSpec.");

  m.def(
      "decode",
      [](const py::buffer& data, uint64_t max_pixels, uint64_t max_bytes) {
        py::buffer_info info;
        const std::string_view bytes = bytes_of(data, info);
        oac::Result<oac::RawImage> raw = [&] {
          py::gil_scoped_release unlocked;
          return oac::decode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                             limits_from(max_pixels, max_bytes));
        }();
        return raw_image_dict(unwrap(std::move(raw)));
      },
      py::arg("data"), py::arg("max_pixels") = kDefaultMaxPixels, py::arg("max_bytes") = kDefaultMaxBytes,
      "File bytes -> {width, height, channels, bit_depth, pixels: uint16[H,W,C], pixel_spacing_mm, laterality}.");

  m.def(
      "measure_picture",
      [](const py::dict& image, const oac::ModelSpec& spec) {
        const oac::RawImage raw = raw_image_from(image);
        oac::Result<oac::PictureMeasures> measures = [&] {
          py::gil_scoped_release unlocked;
          return oac::measure_picture(raw, spec.preprocess);
        }();
        const oac::PictureMeasures found = unwrap(std::move(measures));
        return py::make_tuple(found.colour, found.roughness);
      },
      py::arg("image"), py::arg("spec"),
      "decode() result -> (colour, roughness), the measures preprocess.radiograph bounds (oac/preprocess.hpp).");

  m.def(
      "canonicalise",
      [](const py::dict& image, const oac::ModelSpec& spec) {
        const oac::RawImage raw = raw_image_from(image);
        oac::Result<std::vector<oac::Knee>> knees = [&] {
          py::gil_scoped_release unlocked;
          return oac::canonicalise(raw, spec.preprocess);
        }();
        py::list out;
        for (oac::Knee& knee : unwrap(std::move(knees))) {
          py::dict entry;
          entry["side"] = knee.side;
          entry["patient_side"] = knee.patient_side;
          entry["box"] = box_list(knee.box);
          entry["inverted"] = knee.inverted;
          entry["crop"] = to_numpy(std::move(knee.image));
          out.append(entry);
        }
        return out;
      },
      py::arg("image"), py::arg("spec"), "decode() result -> [{side, patient_side, box: [x0, y0, x1, y1], inverted, crop: float32[H,W]}].");

  m.def(
      "resize",
      [](const FloatArray& image, int width, int height) {
        if (width <= 0 || height <= 0) throw py::value_error("The output width and height must be positive.");
        const oac::GrayImage input = gray_image_from(image);
        oac::GrayImage resized = [&] {
          py::gil_scoped_release unlocked;
          return oac::resize(input, width, height);
        }();
        return to_numpy(std::move(resized));
      },
      py::arg("image"), py::arg("width"), py::arg("height"), "float32[H,W] -> float32[height,width].");

  m.def(
      "to_tensor",
      [](const FloatArray& crop, const oac::ModelSpec& spec) {
        const oac::GrayImage input = gray_image_from(crop);
        const py::ssize_t size = spec.preprocess.input_size;
        if (size <= 0) throw py::value_error("The spec's input_size must be positive.");
        std::vector<float> tensor = [&] {
          py::gil_scoped_release unlocked;
          return oac::to_tensor(input, spec.preprocess);
        }();
        return to_numpy(std::move(tensor), {3, size, size});
      },
      py::arg("crop"), py::arg("spec"), "float32[H,W] crop -> float32[3,S,S].");

  m.def(
      "self_test_tensor",
      [](const oac::ModelSpec& spec) {
        const py::ssize_t size = spec.preprocess.input_size;
        return to_numpy(oac::self_test_tensor(spec.preprocess), {3, size, size});
      },
      py::arg("spec"),
      "float32[3,S,S]: the known-answer self-test's input, the card's knee template made a tensor like any crop.");

  m.def(
      "prepare",
      [](const py::buffer& data, const oac::ModelSpec& spec, uint64_t max_pixels, uint64_t max_bytes) {
        py::buffer_info info;
        const std::string_view bytes = bytes_of(data, info);
        const py::ssize_t size = spec.preprocess.input_size;
        if (size <= 0) throw py::value_error("The spec's input_size must be positive.");
        oac::Result<std::vector<oac::PreparedKnee>> prepared = [&] {
          py::gil_scoped_release unlocked;
          return oac::prepare(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), spec.preprocess,
                              limits_from(max_pixels, max_bytes));
        }();
        py::list out;
        for (oac::PreparedKnee& knee : unwrap(std::move(prepared))) {
          py::dict entry;
          entry["side"] = knee.side;
          entry["patient_side"] = knee.patient_side;
          entry["box"] = box_list(knee.box);
          entry["inverted"] = knee.inverted;
          entry["crop"] = to_numpy(std::move(knee.crop));
          entry["tensor"] = to_numpy(std::move(knee.tensor), {3, size, size});
          add_metadata(entry, knee.metadata);
          out.append(entry);
        }
        return out;
      },
      py::arg("data"), py::arg("spec"), py::arg("max_pixels") = kDefaultMaxPixels,
      py::arg("max_bytes") = kDefaultMaxBytes,
      "File bytes -> [{side, patient_side, box: [x0, y0, x1, y1] in decoded pixels, inverted, crop: float32[H,W], "
      "tensor: float32[3,S,S], pixel_spacing_mm, laterality}] (one or two knees).");

  m.def(
      "knee_candidates",
      [](const FloatArray& image, const oac::ModelSpec& spec) {
        const oac::GrayImage input = gray_image_from(image);
        std::vector<oac::KneeCandidate> candidates = [&] {
          py::gil_scoped_release unlocked;
          return oac::knee_candidates(input, spec.preprocess.localise);
        }();
        py::list out;
        for (const oac::KneeCandidate& candidate : candidates) out.append(py::make_tuple(box_list(candidate.box), candidate.score));
        return out;
      },
      py::arg("image"), py::arg("spec"),
      "Windowed float32[H,W] -> [(box [x0, y0, x1, y1], template match score)], best first (localisation's search).");

  m.def(
      "polarity_measures",
      [](const FloatArray& crop, const oac::ModelSpec& spec) {
        const oac::PolarityMeasures measures = oac::polarity_measures(gray_image_from(crop), spec.preprocess.localise);
        py::dict out;
        out["profile"] = measures.profile;
        out["frame"] = measures.frame;
        out["brightness"] = measures.brightness;
        out["skew"] = measures.skew;
        out["upright_score"] = oac::upright_score(measures, spec.preprocess.localise.polarity);
        return out;
      },
      py::arg("crop"), py::arg("spec"),
      "Windowed float32[H,W] joint crop -> {profile, frame, brightness, skew} (each changes sign on the negative) and "
      "upright_score, the card's weighted sum of them: the polarity rule's measures, for tools/data/polarity_rule.py.");

  m.def(
      "interpret",
      [](float oa_logit, const FloatArray& kl_logits, float ood_score, const oac::ModelSpec& spec) {
        if (kl_logits.size() != oac::kKlGrades) throw py::value_error("kl_logits must hold exactly 5 values.");
        const oac::Prediction prediction = oac::interpret(oa_logit, kl_logits.data(), ood_score, spec);
        py::dict out;
        out["p_oa"] = prediction.p_oa;
        out["oa"] = prediction.oa;
        out["kl_probs"] = prediction.kl_probs;
        out["kl_grade"] = prediction.kl_grade;
        py::list kl_set;
        for (int grade = 0; grade < oac::kKlGrades; ++grade) {
          if (prediction.kl_set[grade]) kl_set.append(grade);
        }
        out["kl_set"] = kl_set;
        out["in_distribution"] = prediction.in_distribution;
        return out;
      },
      py::arg("oa_logit"), py::arg("kl_logits"), py::arg("ood_score"), py::arg("spec"),
      "Raw model outputs -> {p_oa, oa, kl_probs, kl_grade, kl_set: [grades], in_distribution}.");

  m.def(
      "render_cam",
      [](const FloatArray& crop, const FloatArray& cam, float opacity) {
        const oac::GrayImage image = gray_image_from(crop);
        if (cam.ndim() != 2) throw py::value_error("The CAM must be a 2-D array (height, width).");
        std::vector<uint8_t> rgba = unwrap(oac::render_cam(image, cam.data(), static_cast<int>(cam.shape(1)),
                                                          static_cast<int>(cam.shape(0)), opacity));
        return to_numpy(std::move(rgba), {image.height, image.width, 4});
      },
      py::arg("crop"), py::arg("cam"), py::arg("opacity") = 0.5f,
      "float32[H,W] crop, float32[h,w] CAM -> uint8[H,W,4] RGBA heatmap.");
}
