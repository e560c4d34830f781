// Embind surface of build/wasm/oac_core.mjs. Pixel data crosses as typed-array views of
// the module heap (no per-pixel JavaScript); failures come back as {ok:false, error}
// because the WebAssembly build has no exceptions.

#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "oac/oac.hpp"

using emscripten::typed_memory_view;
using emscripten::val;

namespace {

// One knee: `box` is [x0, y0, x1, y1] in pixels of the decoded image (half-open), `by_hand` tells a
// box set with setBox from one localisation found; width and height are the crop's.
struct KneeInfo {
  std::string side;
  std::string patient_side;  // "L" or "R" where a DICOM header names the knee of a one-knee film, else ""
  val box = val::array();
  bool by_hand = false;
  bool inverted = false;  // the picture was a negative (bone dark) and was turned back
  int width = 0;
  int height = 0;
};

// ok: the file decoded. knees may then still be empty: `notice` says why, and the picture stays
// in the core so a box can be drawn on it (overviewRgba, setBox).
struct PrepareOutcome {
  bool ok = false;
  std::string error;
  int width = 0;   // the decoded image
  int height = 0;
  std::string notice;
  val knees = val::array();  // KneeInfo objects
  val pixel_spacing_mm = val::null();  // [between rows, between columns] in mm, from DICOM; null when unknown
  std::string laterality;              // "L", "R", "B", "U" from DICOM, or ""
  int frames = 1;                      // a DICOM's Number of Frames; frame 1 is the one prepared
  // The transfer syntax UID of a DICOM whose frame a codec outside the core must decode (then ok is false):
  // compressedFrame() hands out the frame, prepareDecoded() takes the codec's samples.
  std::string codec_syntax;
};

// Frame 1 of a DICOM that an outside codec decodes (oac::CompressedFrame): codestream is a Uint8Array view
// of the module heap, valid until the next compressedFrame call.
struct CompressedFrameOutcome {
  bool ok = false;
  std::string error;
  std::string transfer_syntax;
  std::string syntax_name;
  val codestream = val::null();
  int rows = 0;
  int columns = 0;
  int samples_per_pixel = 0;
  int bits_allocated = 0;
  int bits_stored = 0;
  bool is_signed = false;
  std::string photometric;
  int frames = 0;
};

// An RGBA picture in the module heap: rgba is a Uint8Array view of width * height * 4 bytes, valid
// until the next cropRgba/renderCam/prepare call; empty (0 x 0) when there is nothing to draw.
struct RgbaView {
  int width = 0;
  int height = 0;
  val rgba = val::null();
};

// The one conversion of a box at this boundary: oac::Box becomes [x0, y0, x1, y1], the spelling of every box
// in JavaScript, the CLI's JSON, the page's data-box attributes and its CSV.
val box_array(const oac::Box& box) {
  val edges = val::array();
  for (const int edge : {box.x0, box.y0, box.x1, box.y1}) edges.call<void>("push", edge);
  return edges;
}

struct SquareBoxOutcome {
  bool ok = false;
  std::string error;
  val box = val::null();  // [x0, y0, x1, y1]
};

// oac::square_hand_box for the page, which draws a box a person moves as the core will crop it.
SquareBoxOutcome square_box(int width, int height, double x0, double y0, double x1, double y1) {
  SquareBoxOutcome outcome;
  oac::Result<oac::Box> square = oac::square_hand_box(x0, y0, x1, y1, width, height);
  if (square) {
    outcome.ok = true;
    outcome.box = box_array(square.value());
  } else {
    outcome.error = square.error().message;
  }
  return outcome;
}

struct SetBoxOutcome {
  bool ok = false;
  std::string error;
  val knee = val::null();  // KneeInfo
};

struct InterpretOutcome {
  bool ok = false;
  std::string error;
  float p_oa = 0;
  bool oa = false;
  std::array<float, oac::kKlGrades> kl_probs{};
  int kl_grade = 0;
  val kl_set = val::array();  // the grades of the KL prediction set, ascending
  bool in_distribution = false;
};

// The file contents as a Uint8Array, or nullopt for anything but a Uint8Array or ArrayBuffer.
std::optional<val> as_byte_array(const val& bytes) {
  if (bytes.instanceof(val::global("Uint8Array"))) return bytes;
  if (bytes.instanceof(val::global("ArrayBuffer"))) return val::global("Uint8Array").new_(bytes);
  return std::nullopt;
}

// One TypedArray.set call, no per-byte JavaScript.
std::vector<uint8_t> copy_to_heap(const val& byte_array, size_t size) {
  std::vector<uint8_t> copy(size);
  val(typed_memory_view(copy.size(), copy.data())).call<void>("set", byte_array);
  return copy;
}

template <typename T>
val view_of(const std::vector<T>& values) {
  return val(typed_memory_view(values.size(), values.data()));
}

// The file contents copied into the heap; nullopt with `error` set for something other than bytes, or a file the
// core refuses for its size (checked before the copy, so an oversized file never reaches the heap).
std::optional<std::vector<uint8_t>> file_bytes(const val& bytes, const char* call, std::string& error) {
  const std::optional<val> byte_array = as_byte_array(bytes);
  if (!byte_array) {
    error = std::string(call) + " needs the file contents as a Uint8Array or ArrayBuffer.";
    return std::nullopt;
  }
  const auto size = (*byte_array)["length"].as<size_t>();
  if (const std::optional<oac::Error> problem = oac::check_file_size(size)) {
    error = problem->message;
    return std::nullopt;
  }
  return copy_to_heap(*byte_array, size);
}

// A DICOM header's facts for sorting a folder of files (a patient's CD); ok false with `error` for a file that is
// not a readable DICOM file.
struct DicomFactsOutcome {
  bool ok = false;
  std::string error;
  oac::DicomFacts facts;
};

DicomFactsOutcome describe_dicom(const val& bytes) {
  DicomFactsOutcome outcome;
  const std::optional<std::vector<uint8_t>> data = file_bytes(bytes, "describeDicom()", outcome.error);
  if (!data) return outcome;
  oac::Result<oac::DicomFacts> described = oac::describe_dicom(data->data(), data->size());
  if (described) {
    outcome.ok = true;
    outcome.facts = std::move(described).value();
  } else {
    outcome.error = described.error().message;
  }
  return outcome;
}

// The files a DICOMDIR lists (oac::read_dicomdir): `entries` holds DirectoryEntry objects, each with its file's
// path from the DICOMDIR's folder, its record type and the DicomFacts the records give.
struct DirectoryOutcome {
  bool ok = false;
  std::string error;
  val entries = val::array();
};

DirectoryOutcome read_dicomdir(const val& bytes) {
  DirectoryOutcome outcome;
  const std::optional<std::vector<uint8_t>> data = file_bytes(bytes, "readDicomdir()", outcome.error);
  if (!data) return outcome;
  oac::Result<std::vector<oac::DirectoryEntry>> read = oac::read_dicomdir(data->data(), data->size());
  if (!read) {
    outcome.error = read.error().message;
    return outcome;
  }
  for (const oac::DirectoryEntry& entry : read.value()) outcome.entries.call<void>("push", entry);
  outcome.ok = true;
  return outcome;
}

// The core's sentence for a file of `bytes` it would refuse for its size, or "": the page asks before
// it reads a file, so the limit and its wording live in the core alone.
std::string file_size_problem(double bytes) {
  const std::optional<oac::Error> problem = oac::check_file_size(bytes < 0 ? 0 : static_cast<uint64_t>(bytes));
  return problem ? problem->message : std::string();
}

// The largest file the core reads: the page reads a file at most this large at once, and asks
// file_size_problem only about a larger one, for the core's sentence.
double max_file_bytes() { return static_cast<double>(oac::Limits{}.max_bytes); }

class Core {
 public:
  explicit Core(const std::string& card_json) {
    oac::Result<oac::ModelSpec> parsed = oac::parse_model_card(card_json);
    if (parsed) {
      spec_ = std::move(parsed).value();
    } else {
      card_error_ = parsed.error().message;
    }
  }

  PrepareOutcome prepare(const val& bytes) {
    PrepareOutcome outcome;
    const std::optional<std::vector<uint8_t>> data = file_in_heap(bytes, "prepare()", outcome.error);
    if (!data) return outcome;
    // A file whose frame a codec must decode fails below with the core's own refusal; codec_syntax says which.
    outcome.codec_syntax = oac::outside_codec_syntax(data->data(), data->size());
    return adopt(oac::prepare_image(data->data(), data->size(), spec_->preprocess), std::move(outcome));
  }

  CompressedFrameOutcome compressed_frame(const val& bytes) {
    CompressedFrameOutcome outcome;
    codestream_.clear();
    const std::optional<std::vector<uint8_t>> data = file_in_heap(bytes, "compressedFrame()", outcome.error);
    if (!data) return outcome;
    oac::Result<oac::CompressedFrame> found = oac::compressed_frame(data->data(), data->size());
    if (!found) {
      outcome.error = found.error().message;
      return outcome;
    }
    oac::CompressedFrame& frame = found.value();
    codestream_ = std::move(frame.codestream);
    outcome.ok = true;
    outcome.transfer_syntax = frame.transfer_syntax_uid;
    outcome.syntax_name = frame.syntax_name;
    outcome.codestream = view_of(codestream_);
    outcome.rows = frame.rows;
    outcome.columns = frame.columns;
    outcome.samples_per_pixel = frame.samples_per_pixel;
    outcome.bits_allocated = frame.bits_allocated;
    outcome.bits_stored = frame.bits_stored;
    outcome.is_signed = frame.is_signed;
    outcome.photometric = frame.photometric;
    outcome.frames = frame.frames;
    return outcome;
  }

  // prepare() of a file compressedFrame() described, with `samples` (a Uint16Array) as its codec decoded
  // frame 1: the core applies the modality LUT, MONOCHROME1, the VOI window and the rest as for any file.
  PrepareOutcome prepare_decoded(const val& bytes, const val& samples) {
    PrepareOutcome outcome;
    const std::optional<std::vector<uint8_t>> data = file_in_heap(bytes, "prepareDecoded()", outcome.error);
    if (!data) return outcome;
    if (!samples.instanceof(val::global("Uint16Array"))) {
      outcome.error = "prepareDecoded() needs the decoded samples as a Uint16Array.";
      return outcome;
    }
    std::vector<uint16_t> decoded(samples["length"].as<size_t>());
    val(typed_memory_view(decoded.size(), decoded.data())).call<void>("set", samples);
    oac::Result<oac::RawImage> raw = oac::decode_dicom_with_frame(data->data(), data->size(), decoded);
    if (!raw) {
      outcome.error = raw.error().message;
      return outcome;
    }
    return adopt(oac::prepare_decoded(raw.value(), spec_->preprocess), std::move(outcome));
  }

  // Crops knee `index` from the box a person set (squared and moved inside by oac::square_hand_box,
  // which the page's squareBox shows while the box moves) and windows it on its own; index == the
  // number of knees adds one. tensor(), crop() and the views then serve the new crop.
  SetBoxOutcome set_box(size_t index, double x0, double y0, double x1, double y1) {
    SetBoxOutcome outcome;
    if (!image_) {
      outcome.error = "setBox() needs a prepared image first.";
      return outcome;
    }
    std::vector<oac::PreparedKnee>& knees = image_->knees;
    if (index > knees.size()) {
      outcome.error = "setBox() can replace a knee or add one after the last, not skip ahead.";
      return outcome;
    }
    const oac::GrayImage& picture = image_->windowed;
    oac::Result<oac::Box> square = oac::square_hand_box(x0, y0, x1, y1, picture.width, picture.height);
    if (!square) {
      outcome.error = square.error().message;
      return outcome;
    }
    // The rule moves any box inside; one that missed the picture was not meant for a knee in it.
    const double across = std::min<double>(picture.width, std::max(x0, x1)) - std::max(0.0, std::min(x0, x1));
    const double down = std::min<double>(picture.height, std::max(y0, y1)) - std::max(0.0, std::min(y0, y1));
    if (across < 2 || down < 2) {
      outcome.error = "The box must cover part of the image, at least 2 pixels across.";
      return outcome;
    }
    const oac::Box& box = square.value();
    std::string side = index < knees.size() ? knees[index].side : side_of_new_knee(box);
    oac::PreparedKnee knee = oac::prepare_knee(oac::knee_in_box(picture, box, std::move(side), spec_->preprocess),
                                               image_->metadata, spec_->preprocess);
    // The kept picture was already turned back if it was a negative.
    knee.inverted = !knees.empty() && knees.front().inverted;
    if (index < knees.size()) {
      knee.patient_side = knees[index].patient_side;
      knees[index] = std::move(knee);
      by_hand_[index] = true;
    } else {
      knees.push_back(std::move(knee));
      by_hand_.push_back(true);
    }
    display_.reset();
    outcome.knee = knee_info(index);
    outcome.ok = true;
    return outcome;
  }

  // The whole decoded picture as the model's window shows it, fitted within max_side (0: full
  // size), for drawing the knees' boxes over; empty before a prepare.
  RgbaView overview_rgba(int max_side) {
    rgba_.clear();
    if (!image_) return nothing_to_draw();
    const oac::GrayImage fitted = oac::fit_for_display(image_->windowed, max_side);
    rgba_ = oac::grey_rgba(fitted);
    return {fitted.width, fitted.height, view_of(rgba_)};
  }

  // Empty views for an index without a knee.
  val tensor(size_t index) const { return has_knee(index) ? view_of(image_->knees[index].tensor) : empty<float>(); }
  val crop(size_t index) const { return has_knee(index) ? view_of(image_->knees[index].crop.pixels) : empty<float>(); }

  // The known-answer self-test's input (oac::self_test_tensor); empty without a valid card.
  val self_test_tensor() {
    if (!spec_) return empty<float>();
    if (self_test_tensor_.empty()) self_test_tensor_ = oac::self_test_tensor(spec_->preprocess);
    return view_of(self_test_tensor_);
  }

  InterpretOutcome interpret(float oa_logit, const val& kl_logits, float ood_score) const {
    InterpretOutcome outcome;
    if (!spec_) {
      outcome.error = card_error_;
      return outcome;
    }
    const std::vector<float> logits = emscripten::convertJSArrayToNumberVector<float>(kl_logits);
    if (logits.size() != oac::kKlGrades) {
      outcome.error = "interpret() needs exactly 5 KL logits.";
      return outcome;
    }
    const oac::Prediction prediction = oac::interpret(oa_logit, logits.data(), ood_score, *spec_);
    outcome.ok = true;
    outcome.p_oa = prediction.p_oa;
    outcome.oa = prediction.oa;
    outcome.kl_probs = prediction.kl_probs;
    outcome.kl_grade = prediction.kl_grade;
    for (int grade = 0; grade < oac::kKlGrades; ++grade) {
      if (prediction.kl_set[grade]) outcome.kl_set.call<void>("push", grade);
    }
    outcome.in_distribution = prediction.in_distribution;
    return outcome;
  }

  // The crop of knee `index` as opaque grey RGBA, fitted within max_side (see fit_for_display);
  // empty for an index without a knee.
  RgbaView crop_rgba(size_t index, int max_side) {
    rgba_.clear();
    if (!has_knee(index)) return nothing_to_draw();
    const oac::GrayImage& crop = display_crop(index, max_side);
    rgba_ = oac::grey_rgba(crop);
    return {crop.width, crop.height, view_of(rgba_)};
  }

  // The CAM blended over the same fitted crop as crop_rgba. Empty view when the knee index, the
  // CAM size or the CAM values are unusable.
  RgbaView render_cam(size_t index, const val& cam, int width, int height, float opacity, int max_side) {
    rgba_.clear();
    if (!has_knee(index) || width <= 0 || height <= 0) return nothing_to_draw();
    const std::vector<float> values = emscripten::convertJSArrayToNumberVector<float>(cam);
    if (values.size() != static_cast<size_t>(width) * height) return nothing_to_draw();
    const oac::GrayImage& crop = display_crop(index, max_side);
    oac::Result<std::vector<uint8_t>> rendered = oac::render_cam(crop, values.data(), width, height, opacity);
    if (!rendered) return nothing_to_draw();
    rgba_ = std::move(rendered).value();
    return {crop.width, crop.height, view_of(rgba_)};
  }

 private:
  template <typename T>
  static val empty() {
    return val(typed_memory_view(0, static_cast<const T*>(nullptr)));
  }

  static RgbaView nothing_to_draw() { return {0, 0, empty<uint8_t>()}; }

  bool has_knee(size_t index) const { return image_ && index < image_->knees.size(); }

  // Forgets the last image and copies the file into the heap (file_bytes); nullopt with `error` set for a bad
  // card too.
  std::optional<std::vector<uint8_t>> file_in_heap(const val& bytes, const char* call, std::string& error) {
    image_.reset();
    by_hand_.clear();
    display_.reset();
    if (!spec_) {
      error = card_error_;
      return std::nullopt;
    }
    return file_bytes(bytes, call, error);
  }

  // The prepared image becomes the core's, for setBox(), the views and tensor().
  PrepareOutcome adopt(oac::Result<oac::PreparedImage> prepared, PrepareOutcome outcome) {
    if (!prepared) {
      outcome.error = prepared.error().message;
      return outcome;
    }
    image_ = std::move(prepared).value();
    by_hand_.assign(image_->knees.size(), false);
    outcome.width = image_->windowed.width;
    outcome.height = image_->windowed.height;
    for (size_t i = 0; i < image_->knees.size(); ++i) outcome.knees.call<void>("push", knee_info(i));
    if (image_->knees.empty()) outcome.notice = oac::kNoKneeFound;
    const oac::ImageMetadata& metadata = image_->metadata;
    if (metadata.pixel_spacing_mm) {
      outcome.pixel_spacing_mm = val::array();
      for (const double millimetres : *metadata.pixel_spacing_mm) outcome.pixel_spacing_mm.call<void>("push", millimetres);
    }
    outcome.laterality = metadata.laterality;
    outcome.frames = metadata.frames;
    outcome.ok = true;
    return outcome;
  }

  val knee_info(size_t index) const {
    const oac::PreparedKnee& knee = image_->knees[index];
    return val(KneeInfo{knee.side, knee.patient_side, box_array(knee.box), by_hand_[index], knee.inverted, knee.crop.width,
                        knee.crop.height});
  }

  // A knee drawn where none was found is the film's only knee, or the one on the other half.
  std::string side_of_new_knee(const oac::Box& box) const {
    if (image_->knees.empty()) return "single";
    return box.x0 + box.x1 < image_->windowed.width ? "left" : "right";
  }

  std::optional<oac::ModelSpec> spec_;
  std::string card_error_;
  std::optional<oac::PreparedImage> image_;
  std::vector<bool> by_hand_;
  std::vector<uint8_t> rgba_;
  std::vector<float> self_test_tensor_;
  std::vector<uint8_t> codestream_;

  // The page asks for the grey view and the heatmap of a knee in turn; one resize serves both.
  const oac::GrayImage& display_crop(size_t index, int max_side) {
    if (!display_ || display_->index != index || display_->max_side != max_side) {
      display_ = DisplayCrop{index, max_side, oac::fit_for_display(image_->knees[index].crop, max_side)};
    }
    return display_->image;
  }

  struct DisplayCrop {
    size_t index;
    int max_side;
    oac::GrayImage image;
  };
  std::optional<DisplayCrop> display_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(oac_core) {
  using namespace emscripten;
  value_array<std::array<float, oac::kKlGrades>>("KlProbabilities")
      .element(emscripten::index<0>())
      .element(emscripten::index<1>())
      .element(emscripten::index<2>())
      .element(emscripten::index<3>())
      .element(emscripten::index<4>());
  value_object<KneeInfo>("KneeInfo")
      .field("side", &KneeInfo::side)
      .field("patient_side", &KneeInfo::patient_side)
      .field("box", &KneeInfo::box)
      .field("by_hand", &KneeInfo::by_hand)
      .field("inverted", &KneeInfo::inverted)
      .field("width", &KneeInfo::width)
      .field("height", &KneeInfo::height);
  value_object<PrepareOutcome>("PrepareOutcome")
      .field("ok", &PrepareOutcome::ok)
      .field("error", &PrepareOutcome::error)
      .field("width", &PrepareOutcome::width)
      .field("height", &PrepareOutcome::height)
      .field("notice", &PrepareOutcome::notice)
      .field("knees", &PrepareOutcome::knees)
      .field("pixel_spacing_mm", &PrepareOutcome::pixel_spacing_mm)
      .field("laterality", &PrepareOutcome::laterality)
      .field("frames", &PrepareOutcome::frames)
      .field("codec_syntax", &PrepareOutcome::codec_syntax);
  value_object<CompressedFrameOutcome>("CompressedFrameOutcome")
      .field("ok", &CompressedFrameOutcome::ok)
      .field("error", &CompressedFrameOutcome::error)
      .field("transfer_syntax", &CompressedFrameOutcome::transfer_syntax)
      .field("syntax_name", &CompressedFrameOutcome::syntax_name)
      .field("codestream", &CompressedFrameOutcome::codestream)
      .field("rows", &CompressedFrameOutcome::rows)
      .field("columns", &CompressedFrameOutcome::columns)
      .field("samples_per_pixel", &CompressedFrameOutcome::samples_per_pixel)
      .field("bits_allocated", &CompressedFrameOutcome::bits_allocated)
      .field("bits_stored", &CompressedFrameOutcome::bits_stored)
      .field("is_signed", &CompressedFrameOutcome::is_signed)
      .field("photometric", &CompressedFrameOutcome::photometric)
      .field("frames", &CompressedFrameOutcome::frames);
  value_object<RgbaView>("RgbaView")
      .field("width", &RgbaView::width)
      .field("height", &RgbaView::height)
      .field("rgba", &RgbaView::rgba);
  value_object<SquareBoxOutcome>("SquareBoxOutcome")
      .field("ok", &SquareBoxOutcome::ok)
      .field("error", &SquareBoxOutcome::error)
      .field("box", &SquareBoxOutcome::box);
  value_object<SetBoxOutcome>("SetBoxOutcome")
      .field("ok", &SetBoxOutcome::ok)
      .field("error", &SetBoxOutcome::error)
      .field("knee", &SetBoxOutcome::knee);
  value_object<InterpretOutcome>("InterpretOutcome")
      .field("ok", &InterpretOutcome::ok)
      .field("error", &InterpretOutcome::error)
      .field("p_oa", &InterpretOutcome::p_oa)
      .field("oa", &InterpretOutcome::oa)
      .field("kl_probs", &InterpretOutcome::kl_probs)
      .field("kl_grade", &InterpretOutcome::kl_grade)
      .field("kl_set", &InterpretOutcome::kl_set)
      .field("in_distribution", &InterpretOutcome::in_distribution);
  value_object<oac::DicomFacts>("DicomFacts")
      .field("sop_class_uid", &oac::DicomFacts::sop_class_uid)
      .field("modality", &oac::DicomFacts::modality)
      .field("body_part", &oac::DicomFacts::body_part)
      .field("study_instance_uid", &oac::DicomFacts::study_instance_uid)
      .field("study_description", &oac::DicomFacts::study_description)
      .field("series_instance_uid", &oac::DicomFacts::series_instance_uid)
      .field("series_description", &oac::DicomFacts::series_description)
      .field("series_number", &oac::DicomFacts::series_number)
      .field("instance_number", &oac::DicomFacts::instance_number)
      .field("has_pixel_data", &oac::DicomFacts::has_pixel_data);
  value_object<DicomFactsOutcome>("DicomFactsOutcome")
      .field("ok", &DicomFactsOutcome::ok)
      .field("error", &DicomFactsOutcome::error)
      .field("facts", &DicomFactsOutcome::facts);
  value_object<oac::DirectoryEntry>("DirectoryEntry")
      .field("file", &oac::DirectoryEntry::file)
      .field("record_type", &oac::DirectoryEntry::record_type)
      .field("facts", &oac::DirectoryEntry::facts);
  value_object<DirectoryOutcome>("DirectoryOutcome")
      .field("ok", &DirectoryOutcome::ok)
      .field("error", &DirectoryOutcome::error)
      .field("entries", &DirectoryOutcome::entries);
  function("describeDicom", &describe_dicom);
  function("readDicomdir", &read_dicomdir);
  function("fileSizeProblem", &file_size_problem);
  function("maxFileBytes", &max_file_bytes);
  function("squareBox", &square_box);
  class_<Core>("Core")
      .constructor<std::string>()
      .function("prepare", &Core::prepare)
      .function("compressedFrame", &Core::compressed_frame)
      .function("prepareDecoded", &Core::prepare_decoded)
      .function("tensor", &Core::tensor)
      .function("crop", &Core::crop)
      .function("selfTestTensor", &Core::self_test_tensor)
      .function("cropRgba", &Core::crop_rgba)
      .function("interpret", &Core::interpret)
      .function("renderCam", &Core::render_cam)
      .function("setBox", &Core::set_box)
      .function("overviewRgba", &Core::overview_rgba);
}
