// Knee-joint localisation on the hand-annotated whole radiographs (models/data/full-radiographs-joints.csv,
// images in ../shared/datasets/full-radiographs) and on synthetic cases made from them.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "fixture_folder.hpp"

using namespace oac_test;

namespace {

struct AnnotatedKnee {
  double cx = 0;
  double cy = 0;
  double knee_width = 0;
};

// file -> its annotated knees (an image without a usable knee has none).
std::map<std::string, std::vector<AnnotatedKnee>> annotations() {
  std::ifstream in(OAC_JOINT_ANNOTATIONS);
  REQUIRE(in.good());
  std::map<std::string, std::vector<AnnotatedKnee>> out;
  std::string line;
  std::getline(in, line);  // header: file,image_side,cx,cy,knee_width,view,notes
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream row(line);
    for (std::string field; fields.size() < 5 && std::getline(row, field, ',');) fields.push_back(field);
    REQUIRE(fields.size() == 5);
    std::vector<AnnotatedKnee>& knees = out[fields[0]];
    if (!fields[2].empty()) knees.push_back({std::stod(fields[2]), std::stod(fields[3]), std::stod(fields[4])});
  }
  return out;
}

std::string radiograph(const std::string& file) { return std::string(OAC_DATASETS_DIR) + "/full-radiographs/" + file; }

struct Framing {
  double knee_width = 0;  // knee width / crop side in the training crops
  double joint_line = 0;  // joint line row / crop side
};

Framing framing() {
  const nlohmann::json card = read_json(OAC_MODEL_CARD_PATH);
  const nlohmann::json& rule = member(member(member(card, "preprocess"), "localise"), "framing");
  return {member(rule, "knee_width").get<double>(), member(rule, "joint_line").get<double>()};
}

bool holds(const oac::Box& box, double x, double y) { return box.x0 <= x && x < box.x1 && box.y0 <= y && y < box.y1; }

// The joint centre a box implies, in % of the annotated knee width away from the annotation.
double centre_error(const oac::Box& box, const AnnotatedKnee& knee, const Framing& rule) {
  const double x = 0.5 * (box.x0 + box.x1);
  const double y = box.y0 + rule.joint_line * box.width();
  return 100 * std::hypot(x - knee.cx, y - knee.cy) / knee.knee_width;
}

oac::RawImage crop_raw(const oac::RawImage& image, int x0, int y0, int x1, int y1) {
  oac::RawImage out{x1 - x0, y1 - y0, image.channels, image.bit_depth, {}, image.metadata};
  for (int y = y0; y < y1; ++y) {
    const auto row = image.samples.begin() + (static_cast<ptrdiff_t>(y) * image.width + x0) * image.channels;
    out.samples.insert(out.samples.end(), row, row + static_cast<ptrdiff_t>(x1 - x0) * image.channels);
  }
  return out;
}

// Rotated about the centre by `degrees` (nearest sample, black outside), as a tilted film would be.
oac::RawImage rotate_raw(const oac::RawImage& image, double degrees) {
  const double angle = degrees * 3.14159265358979 / 180;
  const double cx = image.width / 2.0;
  const double cy = image.height / 2.0;
  oac::RawImage out = image;
  std::fill(out.samples.begin(), out.samples.end(), 0);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double sx = std::cos(angle) * (x - cx) + std::sin(angle) * (y - cy) + cx;
      const double sy = -std::sin(angle) * (x - cx) + std::cos(angle) * (y - cy) + cy;
      const int ix = static_cast<int>(std::lround(sx));
      const int iy = static_cast<int>(std::lround(sy));
      if (ix < 0 || iy < 0 || ix >= image.width || iy >= image.height) continue;
      for (int c = 0; c < image.channels; ++c) {
        out.samples[(static_cast<size_t>(y) * image.width + x) * image.channels + c] =
            image.samples[(static_cast<size_t>(iy) * image.width + ix) * image.channels + c];
      }
    }
  }
  return out;
}

// Where a point of the source lands after rotate_raw.
std::pair<double, double> rotated_point(const oac::RawImage& image, double x, double y, double degrees) {
  const double angle = degrees * 3.14159265358979 / 180;
  const double cx = image.width / 2.0;
  const double cy = image.height / 2.0;
  return {std::cos(angle) * (x - cx) - std::sin(angle) * (y - cy) + cx,
          std::sin(angle) * (x - cx) + std::cos(angle) * (y - cy) + cy};
}

std::vector<oac::Knee> knees_of(const oac::RawImage& image) {
  oac::Result<std::vector<oac::Knee>> knees = oac::canonicalise(image, product_preprocess());
  INFO(error_of(knees));
  REQUIRE(knees.ok());
  return std::move(knees).value();
}

const char* const kTwoKnees = "normal_N14.jpg";  // 2180 x 2660, both knees, long shafts, R/L markers

}  // namespace

TEST_CASE("every annotated knee of the whole radiographs is found, centred and framed", "[localise]") {
  const Framing rule = framing();
  const auto annotated = annotations();
  REQUIRE(annotated.size() == 66);
  int knees = 0, found = 0, invented = 0, sized = 0;
  double worst_centre = 0;
  for (const auto& [file, expected] : annotated) {
    INFO(file);
    const oac::Result<oac::RawImage> raw = decode_file(radiograph(file));
    REQUIRE(raw.ok());
    const oac::Result<std::vector<oac::Knee>> result = oac::canonicalise(raw.value(), product_preprocess());
    const std::vector<oac::Knee> boxes = result.ok() ? result.value() : std::vector<oac::Knee>{};
    std::vector<bool> used(boxes.size(), false);
    for (const AnnotatedKnee& knee : expected) {
      ++knees;
      for (size_t i = 0; i < boxes.size(); ++i) {
        if (used[i] || !holds(boxes[i].box, knee.cx, knee.cy)) continue;
        used[i] = true;
        ++found;
        const double error = centre_error(boxes[i].box, knee, rule);
        INFO("centre error " << error << "% of the knee width");
        CHECK(error <= 15.0);
        worst_centre = std::max(worst_centre, error);
        const double rule_side = knee.knee_width / rule.knee_width;
        if (std::fabs(boxes[i].box.width() / rule_side - 1) <= 0.20) ++sized;
        break;
      }
    }
    invented += static_cast<int>(std::count(used.begin(), used.end(), false));
  }
  // Measured: 105 of 106 found, one box invented beside the missed knee (osteopenia_OP42's right knee is
  // matched at a third of its size, off its centre), 98 of 105 boxes within 20% of the framing rule.
  INFO(found << " of " << knees << " found, " << invented << " invented, " << sized << " sized within 20%, worst centre "
             << worst_centre << "%");
  CHECK(knees == 106);
  CHECK(found >= knees - 1);
  CHECK(invented <= 1);
  CHECK(sized >= 0.9 * found);
}

TEST_CASE("a bilateral radiograph gives a left and a right knee with boxes in its pixels", "[localise]") {
  const oac::Result<oac::RawImage> raw = decode_file(radiograph(kTwoKnees));
  REQUIRE(raw.ok());
  const std::vector<oac::Knee> knees = knees_of(raw.value());
  REQUIRE(knees.size() == 2);
  CHECK(knees[0].side == "left");
  CHECK(knees[1].side == "right");
  for (const oac::Knee& knee : knees) {
    CHECK(knee.box.width() == knee.box.height());
    CHECK(knee.image.width == knee.box.width());
    CHECK(knee.box.x0 >= 0);
    CHECK(knee.box.y1 <= raw.value().height);
    CHECK(knee.patient_side.empty());  // a JPEG names no patient side
  }
  CHECK(knees[0].box.x1 <= knees[1].box.x0);
}

TEST_CASE("a knee at the edge of the film is found and its box stays inside", "[localise]") {
  const oac::Result<oac::RawImage> raw = decode_file(radiograph(kTwoKnees));
  REQUIRE(raw.ok());
  const AnnotatedKnee left = annotations().at(kTwoKnees).front();
  // Cut the film through the left knee's outer condyle: the joint now meets the image's edge.
  const int cut = static_cast<int>(left.cx - 0.45 * left.knee_width);
  const oac::RawImage cropped = crop_raw(raw.value(), cut, 0, raw.value().width, raw.value().height);
  const std::vector<oac::Knee> knees = knees_of(cropped);
  REQUIRE(knees.size() == 2);
  CHECK(knees[0].box.x0 >= 0);
  CHECK(holds(knees[0].box, left.cx - cut, left.cy));
}

TEST_CASE("a film rotated by a few degrees still gives both knees", "[localise]") {
  const oac::Result<oac::RawImage> raw = decode_file(radiograph(kTwoKnees));
  REQUIRE(raw.ok());
  const auto expected = annotations().at(kTwoKnees);
  for (const double degrees : {-5.0, 5.0}) {
    INFO(degrees << " degrees");
    const oac::RawImage rotated = rotate_raw(raw.value(), degrees);
    const std::vector<oac::Knee> knees = knees_of(rotated);
    REQUIRE(knees.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      const auto [x, y] = rotated_point(raw.value(), expected[i].cx, expected[i].cy, degrees);
      CHECK(holds(knees[i].box, x, y));
    }
  }
}

TEST_CASE("a joint crop keeps today's framing: the whole picture, one knee", "[localise]") {
  // Every dataset crop (224, 299 px; 300 x 162 and 640 x 161 strips) is too small to hold a knee of
  // min_knee_pixels with a film's surroundings, whatever it shows.
  std::vector<uint16_t> shapes(224 * 224);
  for (size_t i = 0; i < shapes.size(); ++i) {
    shapes[i] = static_cast<uint16_t>(128 + 100 * std::sin(static_cast<double>(i % 224) / 15) *
                                                std::cos(static_cast<double>(i / 224) / 20));
  }
  const std::vector<oac::Knee> knees = knees_of(grey_raw(224, 224, shapes));
  REQUIRE(knees.size() == 1);
  CHECK(knees[0].side == "single");
  CHECK(knees[0].box == oac::Box{0, 0, 224, 224});
}

TEST_CASE("blank, noise and text images are refused, a smooth one without a knee has none, and each says so",
          "[localise][errors]") {
  const int width = 800, height = 600;
  CHECK(error_of(oac::canonicalise(grey_raw(width, height, std::vector<uint16_t>(width * height, 90)),
                                   product_preprocess())) == "The image is blank: it has no contrast to show a knee.");

  std::vector<uint16_t> noise(width * height);
  std::mt19937 random(11);
  for (uint16_t& v : noise) v = static_cast<uint16_t>(random() % 256);
  const std::string not_a_radiograph = "This picture is fine grain or noise throughout";
  CHECK(error_of(oac::canonicalise(grey_raw(width, height, noise), product_preprocess())).rfind(not_a_radiograph, 0) == 0);

  std::vector<uint16_t> ramp(width * height);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<uint16_t>((i % width) * 255 / (width - 1));
  CHECK(error_of(oac::canonicalise(grey_raw(width, height, ramp), product_preprocess())) == oac::kNoKneeFound);

  // A scanned page of "text": dark strokes in lines on paper whose shade drifts across the scan.
  std::vector<uint16_t> page(width * height);
  for (size_t i = 0; i < page.size(); ++i) page[i] = static_cast<uint16_t>(200 + (i % width) * 40 / width + random() % 8);
  for (int line = 40; line + 14 < height; line += 28) {
    for (int x = 30; x < width - 30; ++x) {
      const bool ink = (x / 7) % 5 != 4 && ((x * 13 + line) % 11) < 6;
      for (int y = line; y < line + 14 && ink; ++y) page[static_cast<size_t>(y) * width + x] = 20;
    }
  }
  CHECK(error_of(oac::canonicalise(grey_raw(width, height, page), product_preprocess())).rfind(not_a_radiograph, 0) == 0);
}

TEST_CASE("a box set by hand is made square, kept inside and windowed on its own", "[localise]") {
  const oac::Result<oac::RawImage> raw = decode_file(radiograph(kTwoKnees));
  REQUIRE(raw.ok());
  const oac::PreprocessSpec spec = product_preprocess();
  const oac::Result<oac::GrayImage> windowed = oac::window_image(raw.value(), spec);
  REQUIRE(windowed.ok());
  const oac::Knee knee = oac::knee_in_box(windowed.value(), {-100, 300, 500, 700}, "left", spec);
  CHECK(knee.box == oac::Box{0, 200, 600, 800});
  CHECK(knee.image.width == 600);
  CHECK(*std::max_element(knee.image.pixels.begin(), knee.image.pixels.end()) == 1.0f);
  CHECK(*std::min_element(knee.image.pixels.begin(), knee.image.pixels.end()) == 0.0f);
}

TEST_CASE("a box a person proposes is squared about its centre, kept from being tiny and moved inside", "[localise]") {
  const auto square = [](double x0, double y0, double x1, double y1) {
    const oac::Result<oac::Box> box = oac::square_hand_box(x0, y0, x1, y1, 1000, 500);
    REQUIRE(box.ok());
    return box.value();
  };
  CHECK(square(100, 100, 200, 200) == oac::Box{100, 100, 200, 200});
  CHECK(square(100, 100, 300, 200) == oac::Box{100, 50, 300, 250});    // a rectangle: its longer side, same centre
  CHECK(square(300, 200, 100, 100) == oac::Box{100, 50, 300, 250});    // corners in either order
  CHECK(square(99.6, 100.4, 199.6, 200.4) == oac::Box{100, 100, 200, 200});  // edges rounded to pixels
  CHECK(square(-50, 450, 50, 550) == oac::Box{0, 400, 100, 500});      // moved inside, its side kept
  CHECK(square(0, 0, 600, 600) == oac::Box{50, 0, 550, 500});          // no larger than the shorter side
  CHECK(square(500, 250, 500, 250) == oac::Box{490, 240, 510, 260});   // 4% of the shorter side at least
  CHECK(oac::square_hand_box(0, std::nan(""), 10, 10, 100, 100).error().message == "The box must be four numbers.");
  CHECK(!oac::square_hand_box(0, 0, 10, 10, 0, 100).ok());
}

namespace {

oac::RawImage negative_of(oac::RawImage image) {
  const int top = (1 << image.bit_depth) - 1;
  for (uint16_t& sample : image.samples) sample = static_cast<uint16_t>(top - sample);
  return image;
}

std::string dataset_file(const std::string& path) { return std::string(OAC_DATASETS_DIR) + "/" + path; }

}  // namespace

TEST_CASE("a negative joint crop is turned back: bone is bright", "[localise][polarity]") {
  const oac::Result<oac::RawImage> raw = decode_file(dataset_file("Osteoarthritis_Dataset/Valid/Normal/9001695L.png"));
  REQUIRE(raw.ok());
  const std::vector<oac::Knee> shown = knees_of(raw.value());
  REQUIRE(shown.size() == 1);
  CHECK_FALSE(shown[0].inverted);
  const std::vector<oac::Knee> turned = knees_of(negative_of(raw.value()));
  REQUIRE(turned.size() == 1);
  CHECK(turned[0].inverted);
  CHECK(turned[0].box == shown[0].box);
  // The window's ranks fall on slightly different samples in the negative; the pictures agree closely.
  float largest = 0;
  for (size_t i = 0; i < shown[0].image.pixels.size(); ++i) {
    largest = std::max(largest, std::fabs(turned[0].image.pixels[i] - shown[0].image.pixels[i]));
  }
  CHECK(largest < 0.02f);

  // The published dataset itself holds negatives among its OAI crops, e.g. this one.
  const oac::Result<oac::RawImage> published = decode_file(dataset_file("kneeKL224/train/1/9566181L.png"));
  REQUIRE(published.ok());
  CHECK(knees_of(published.value()).front().inverted);
}

TEST_CASE("a negative whose row profile barely matches the template is turned back by its brightness", "[localise][polarity]") {
  // A picture of the second collection: its right knee's upright rows match the template's at only
  // 0.77 and its gradients at 0.09, which the profile-and-gradients rule (0.8) let through; its
  // bright, left-skewed brightness does not.
  const oac::Result<oac::RawImage> raw =
      decode_file(dataset_file("Osteoarthritis_Dataset/Valid/Osteoarthritis/ModerateG3 (182).png"));
  REQUIRE(raw.ok());
  const std::vector<oac::Knee> upright = knees_of(raw.value());
  REQUIRE(upright.size() == 2);  // the picture shows both knees side by side
  const oac::PolarityMeasures measures = oac::polarity_measures(upright.back().image, product_preprocess().localise);
  CHECK(measures.profile < 0.8f);
  CHECK(measures.brightness > 0.2f);
  CHECK(measures.skew < -0.5f);
  const std::vector<oac::Knee> turned = knees_of(negative_of(raw.value()));
  REQUIRE(turned.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK_FALSE(upright[i].inverted);
    CHECK(turned[i].inverted);
  }
}

TEST_CASE("each polarity measure changes sign, and no more, on the negative", "[localise][polarity]") {
  const oac::Result<oac::RawImage> raw = decode_file(dataset_file("Osteoarthritis_Dataset/Valid/Normal/9001695L.png"));
  REQUIRE(raw.ok());
  const oac::GrayImage crop = knees_of(raw.value()).front().image;
  oac::GrayImage negative = crop;
  for (float& value : negative.pixels) value = 1.0f - value;
  const oac::LocaliseSpec& spec = product_preprocess().localise;
  const oac::PolarityMeasures upright = oac::polarity_measures(crop, spec);
  const oac::PolarityMeasures turned = oac::polarity_measures(negative, spec);
  CHECK(upright.profile > 0.5f);
  CHECK(upright.brightness > 0.0f);
  CHECK(upright.skew < 0.0f);
  CHECK(turned.profile == Approx(-upright.profile).margin(1e-4));
  CHECK(turned.frame == Approx(-upright.frame).margin(1e-4));
  CHECK(turned.brightness == Approx(-upright.brightness).margin(1e-4));
  CHECK(turned.skew == Approx(-upright.skew).margin(1e-4));
  CHECK(oac::upright_score(turned, spec.polarity) == Approx(-oac::upright_score(upright, spec.polarity)).margin(1e-3));
}

TEST_CASE("a negative whole radiograph gives the same knees, turned back", "[localise][polarity]") {
  const oac::Result<oac::RawImage> raw = decode_file(radiograph(kTwoKnees));
  REQUIRE(raw.ok());
  const std::vector<oac::Knee> shown = knees_of(raw.value());
  const std::vector<oac::Knee> turned = knees_of(negative_of(raw.value()));
  REQUIRE(turned.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(turned[i].inverted);
    CHECK(std::abs(turned[i].box.x0 - shown[i].box.x0) <= 0.05 * shown[i].box.width());
    CHECK(std::abs(turned[i].box.y0 - shown[i].box.y0) <= 0.05 * shown[i].box.width());
  }
}

TEST_CASE("a DICOM's photometric interpretation is trusted, never second-guessed", "[localise][polarity]") {
  const oac::Result<oac::RawImage> raw = decode_file(dataset_file("Osteoarthritis_Dataset/Valid/Normal/9001695L.png"));
  REQUIRE(raw.ok());
  oac::RawImage negative = negative_of(raw.value());
  negative.metadata.polarity_from_header = true;
  CHECK_FALSE(knees_of(negative).front().inverted);
}
