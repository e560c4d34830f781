#include <cstring>

#include "encoders.hpp"
#include "test_support.hpp"

using namespace oac_test;

namespace {

// Distinct values per sample so that any channel or row mix-up shows.
std::vector<uint16_t> pattern(int width, int height, int channels, int bit_depth) {
  std::vector<uint16_t> samples;
  const uint32_t top = bit_depth == 16 ? 65535 : 255;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        samples.push_back(static_cast<uint16_t>((x * 997u + y * 331u + c * 7919u + 13u) % (top + 1)));
      }
    }
  }
  return samples;
}

std::vector<uint8_t> as_bytes(const std::vector<uint16_t>& samples) { return {samples.begin(), samples.end()}; }

std::vector<uint8_t> small_png() {
  return encode_png({5, 4, PngColour::rgb, 8, pattern(5, 4, 3, 8)});
}

std::vector<uint8_t> small_jpeg() {
  return encode_jpeg(16, 16, 3, as_bytes(pattern(16, 16, 3, 8)), 90);
}

std::vector<uint8_t> small_bmp() {
  return encode_bmp(7, 5, 3, as_bytes(pattern(7, 5, 3, 8)));
}

uint16_t ramp(int position, int extent) { return static_cast<uint16_t>(position * 255 / (extent - 1)); }

// Largest absolute difference between a decoded lossy image and the generator's formula.
int worst_error(const oac::RawImage& image, uint16_t (*expected)(int x, int y, int c)) {
  int worst = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      for (int c = 0; c < image.channels; ++c) {
        const int got = image.samples[(static_cast<size_t>(y) * image.width + x) * image.channels + c];
        worst = std::max(worst, std::abs(got - expected(x, y, c)));
      }
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("PNG of every colour type and bit depth decodes exactly", "[decode][png]") {
  const auto colour = GENERATE(PngColour::grey, PngColour::grey_alpha, PngColour::rgb, PngColour::rgba);
  const int bit_depth = GENERATE(8, 16);
  const int channels = channels_of(colour);
  const std::vector<uint16_t> samples = pattern(9, 6, channels, bit_depth);
  CAPTURE(static_cast<int>(colour), bit_depth);

  const auto decoded = decode_bytes(encode_png({9, 6, colour, bit_depth, samples}));

  REQUIRE(error_of(decoded).empty());
  const oac::RawImage& image = decoded.value();
  CHECK(image.width == 9);
  CHECK(image.height == 6);
  CHECK(image.channels == channels);
  CHECK(image.bit_depth == bit_depth);
  CHECK(image.samples == samples);
}

TEST_CASE("palette PNG expands to RGB, or RGBA when the palette has transparency", "[decode][png]") {
  const std::vector<std::array<uint8_t, 3>> palette = {{10, 20, 30}, {200, 100, 0}, {0, 255, 128}};
  std::vector<uint16_t> indices;
  for (int i = 0; i < 12; ++i) indices.push_back(static_cast<uint16_t>(i % 3));
  const bool transparent = GENERATE(false, true);
  PngImage png{4, 3, PngColour::palette, 8, indices, palette, {}};
  if (transparent) png.palette_alpha = {255, 128, 0};

  const auto decoded = decode_bytes(encode_png(png));

  REQUIRE(error_of(decoded).empty());
  const oac::RawImage& image = decoded.value();
  const int channels = transparent ? 4 : 3;
  REQUIRE(image.channels == channels);
  CHECK(image.bit_depth == 8);
  for (size_t i = 0; i < indices.size(); ++i) {
    for (int c = 0; c < 3; ++c) CHECK(image.samples[i * channels + c] == palette[indices[i]][c]);
    if (transparent) CHECK(image.samples[i * channels + 3] == png.palette_alpha[indices[i]]);
  }
}

TEST_CASE("PNG written by PIL: 1-bit and 16-bit grey", "[decode][png]") {
  SECTION("1-bit expands to 0 and 255") {
    const auto decoded = decode_bytes(fixtures::one_bit_png);
    REQUIRE(error_of(decoded).empty());
    const oac::RawImage& image = decoded.value();
    REQUIRE(image.width == fixtures::kWidth);
    REQUIRE(image.channels == 1);
    CHECK(image.bit_depth == 8);
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) {
        CHECK(image.samples[static_cast<size_t>(y) * image.width + x] == ((x + y) % 2 ? 255 : 0));
      }
    }
  }
  SECTION("16-bit keeps full precision") {
    const auto decoded = decode_bytes(fixtures::pil_grey16_png);
    REQUIRE(error_of(decoded).empty());
    const oac::RawImage& image = decoded.value();
    REQUIRE(image.channels == 1);
    CHECK(image.bit_depth == 16);
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) {
        CHECK(image.samples[static_cast<size_t>(y) * image.width + x] == x * 1000 + y * 7 + 3);
      }
    }
  }
}

TEST_CASE("JPEG baseline and progressive, grey and colour", "[decode][jpeg]") {
  // Lossy: 4:4:4 at quality 95 stays within a few levels of the smooth gradients.
  constexpr int kTolerance = 6;
  auto rgb = [](int x, int y, int c) -> uint16_t {
    return c == 0 ? ramp(x, fixtures::kWidth) : c == 1 ? ramp(y, fixtures::kHeight) : 128;
  };
  auto grey = [](int x, int, int) { return ramp(x, fixtures::kWidth); };

  SECTION("baseline colour (stb_image_write)") {
    std::vector<uint8_t> samples;
    for (int y = 0; y < fixtures::kHeight; ++y)
      for (int x = 0; x < fixtures::kWidth; ++x)
        for (int c = 0; c < 3; ++c) samples.push_back(static_cast<uint8_t>(rgb(x, y, c)));
    const auto decoded = decode_bytes(encode_jpeg(fixtures::kWidth, fixtures::kHeight, 3, samples, 100));
    REQUIRE(error_of(decoded).empty());
    REQUIRE(decoded.value().channels == 3);
    CHECK(decoded.value().bit_depth == 8);
    CHECK(worst_error(decoded.value(), rgb) <= kTolerance);
  }
  SECTION("baseline grey (PIL)") {
    const auto decoded = decode_bytes(fixtures::baseline_jpeg_grey);
    REQUIRE(error_of(decoded).empty());
    REQUIRE(decoded.value().channels == 1);
    CHECK(worst_error(decoded.value(), grey) <= kTolerance);
  }
  SECTION("progressive colour (PIL)") {
    const auto decoded = decode_bytes(fixtures::progressive_jpeg_rgb);
    REQUIRE(error_of(decoded).empty());
    REQUIRE(decoded.value().width == fixtures::kWidth);
    REQUIRE(decoded.value().height == fixtures::kHeight);
    REQUIRE(decoded.value().channels == 3);
    CHECK(worst_error(decoded.value(), rgb) <= kTolerance);
  }
  SECTION("progressive grey (PIL)") {
    const auto decoded = decode_bytes(fixtures::progressive_jpeg_grey);
    REQUIRE(error_of(decoded).empty());
    REQUIRE(decoded.value().channels == 1);
    CHECK(worst_error(decoded.value(), grey) <= kTolerance);
  }
}

TEST_CASE("BMP 24-bit, 32-bit and 8-bit palette", "[decode][bmp]") {
  SECTION("24-bit and 32-bit decode exactly") {
    const int channels = GENERATE(3, 4);
    const std::vector<uint16_t> samples = pattern(7, 5, channels, 8);
    const auto decoded = decode_bytes(encode_bmp(7, 5, channels, as_bytes(samples)));
    REQUIRE(error_of(decoded).empty());
    CHECK(decoded.value().channels == channels);
    CHECK(decoded.value().bit_depth == 8);
    CHECK(decoded.value().samples == samples);
  }
  SECTION("8-bit palette (PIL) expands to RGB") {
    const auto decoded = decode_bytes(fixtures::palette_bmp);
    REQUIRE(error_of(decoded).empty());
    const oac::RawImage& image = decoded.value();
    REQUIRE(image.channels == 3);
    const uint16_t colours[4][3] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) {
        for (int c = 0; c < 3; ++c) {
          CHECK(image.samples[(static_cast<size_t>(y) * image.width + x) * 3 + c] == colours[(x + y) % 4][c]);
        }
      }
    }
  }
}

TEST_CASE("bad inputs return a clear error and never crash", "[decode][errors]") {
  SECTION("empty") {
    CHECK(error_of(decode_bytes({})) == "The file is empty.");
    CHECK(error_of(oac::decode(nullptr, 0)) == "The file is empty.");
  }
  SECTION("unknown format") {
    const std::string gif = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    CHECK(error_of(decode_bytes({gif.begin(), gif.end()})) == "The file is not a PNG, JPEG or BMP image.");
    CHECK(error_of(decode_bytes({'h', 'e', 'l', 'l', 'o'})) == "The file is not a PNG, JPEG or BMP image.");
  }
  SECTION("truncated PNG, JPEG and BMP, anywhere in the file") {
    const std::vector<std::pair<std::vector<uint8_t>, std::string>> files = {
        {small_png(), "PNG"}, {small_jpeg(), "JPEG"}, {small_bmp(), "BMP"}, {fixtures::progressive_jpeg_rgb, "JPEG"}};
    for (const auto& [file, name] : files) {
      for (size_t keep : {size_t{10}, size_t{30}, file.size() / 2, file.size() - 1}) {
        CAPTURE(name, keep, file.size());
        const std::vector<uint8_t> cut(file.begin(), file.begin() + static_cast<ptrdiff_t>(keep));
        CHECK(error_of(decode_bytes(cut)) ==
              "The " + name + " file is truncated: it ends before the image data is complete.");
      }
    }
  }
  SECTION("zero width or height") {
    CHECK(error_of(decode_bytes(png_declaring(0, 10, PngColour::grey, 8, zlib_stored({0})))) ==
          "The image has no pixels: its header declares a width or height of 0.");
    std::vector<uint8_t> jpeg = small_jpeg();
    patch_jpeg_dimensions(jpeg, 0, 16);
    CHECK(error_of(decode_bytes(jpeg)) == "The image has no pixels: its header declares a width or height of 0.");
    std::vector<uint8_t> bmp = small_bmp();
    std::memset(bmp.data() + 18, 0, 4);  // BITMAPINFOHEADER width
    CHECK(error_of(decode_bytes(bmp)) == "The image has no pixels: its header declares a width or height of 0.");
  }
  SECTION("decompression bomb: a tiny file declaring huge dimensions") {
    const auto png_bomb = png_declaring(100000, 100000, PngColour::rgba, 16, zlib_stored({0, 0, 0}));
    REQUIRE(png_bomb.size() < 100);
    CHECK(error_of(decode_bytes(png_bomb)) ==
          "The image declares 100000 x 100000 pixels (10000.0 megapixels), more than the limit of 64.0 megapixels; "
          "the file is probably corrupt or a decompression bomb.");
    std::vector<uint8_t> jpeg_bomb = small_jpeg();
    patch_jpeg_dimensions(jpeg_bomb, 65000, 65000);
    CHECK(error_of(decode_bytes(jpeg_bomb)) ==
          "The image declares 65000 x 65000 pixels (4225.0 megapixels), more than the limit of 64.0 megapixels; "
          "the file is probably corrupt or a decompression bomb.");
  }
  SECTION("pixel limit is configurable") {
    oac::Limits limits;
    limits.max_pixels = 19;
    CHECK(error_of(decode_bytes(small_png(), limits)) ==
          "The image declares 5 x 4 pixels (0.0 megapixels), more than the limit of 0.0 megapixels; "
          "the file is probably corrupt or a decompression bomb.");
    limits.max_pixels = 20;
    CHECK(decode_bytes(small_png(), limits).ok());
  }
  SECTION("over the byte limit, checked before decoding") {
    oac::Limits limits;
    limits.max_bytes = 100;
    CHECK(error_of(decode_bytes(std::vector<uint8_t>(101, 0), limits)) ==
          "The file is too large (101 bytes; the limit is 100 bytes).");
    limits.max_bytes = 1'000'000;
    CHECK(error_of(decode_bytes(std::vector<uint8_t>(1'500'000, 0), limits)) ==
          "The file is too large (1.5 MB; the limit is 1.0 MB).");
    CHECK(oac::check_file_size(1'500'000, limits)->message == "The file is too large (1.5 MB; the limit is 1.0 MB).");
    CHECK_FALSE(oac::check_file_size(1'000'000, limits));
    CHECK(oac::Limits{}.max_bytes == 100'000'000);
    CHECK(oac::Limits{}.max_pixels == 64'000'000);
  }
  SECTION("damaged data") {
    const std::vector<uint8_t> bad_stream = {0x78, 0x02, 0x03, 0x00};  // header checksum wrong
    CHECK(error_of(decode_bytes(png_declaring(2, 2, PngColour::grey, 8, bad_stream))) ==
          "The PNG file is damaged or uses an unsupported variant (bad zlib header).");
  }
  SECTION("the process survives and still decodes good images") {
    const auto decoded = decode_bytes(small_png());
    REQUIRE(error_of(decoded).empty());
    CHECK(decoded.value().width == 5);
  }
}
