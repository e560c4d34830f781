#pragma once
// Format-specific decoders behind oac::decode, which has already checked that the
// input is non-empty and within the byte limit.

#include <cstddef>
#include <cstdint>
#include <string>

#include "oac/image.hpp"

namespace oac::detail {

// PNG, JPEG and BMP through stb_image.
Result<RawImage> decode_with_stb(const uint8_t* data, size_t size, const Limits& limits);

// Guards for stb_image 2.27 (stb_guards.cpp), each found by fuzzing. The JPEG's Huffman table problem in
// stb's words ("bad DHT header": more than 256 codes, which stb copies past its arrays; "undefined Huffman
// table": a scan using a table never defined, which stb reads uninitialised), or nullptr.
const char* jpeg_huffman_problem(const uint8_t* data, size_t size);

// truncated: a PNG chunk declares more bytes than the file has left, which stb would allocate before
// reading. empty_first_image_data: the first IDAT chunk holds no bytes, which stb copies from a buffer it
// has not allocated yet (memcpy from a null pointer: undefined behaviour). Encoders never write one.
enum class PngChunkProblem { none, truncated, empty_first_image_data };
PngChunkProblem png_chunk_problem(const uint8_t* data, size_t size);

// Errors for header dimensions, shared by every decoder so that they read the same.
Error no_pixels();
Error too_many_pixels(uint64_t width, uint64_t height, const Limits& limits);

// "2.5 MB", "12.0 kB", "300 bytes".
std::string describe_bytes(uint64_t bytes);

}  // namespace oac::detail
