// Checks for the headers that stb_image 2.27 (Debian 12's libstb-dev) trusts too far, found by
// tests/fuzz and the bad-input corpus:
//  - a JPEG Huffman table (DHT) lists up to 16 x 255 codes, and stb copies them into arrays of 256
//    (stb 2.28 rejects such tables as "bad DHT header");
//  - a JPEG scan uses a Huffman table no DHT defined, and stb decodes with its uninitialised memory
//    (reads out of bounds, and results that differ from run to run);
//  - a PNG image data chunk declares up to 2 GB, and stb allocates that much before reading it, which
//    succeeds natively (the read then runs out of file) but fails in WebAssembly's memory.

#include <algorithm>
#include <cstring>

#include "decoders.hpp"

namespace oac::detail {
namespace {

constexpr size_t kMaxHuffmanCodes = 256;
constexpr int kHuffmanSlots = 4;  // table numbers 0-3 for DC and for AC; stb rejects higher ones itself

uint8_t byte_at(const uint8_t* data, size_t size, size_t at) { return at < size ? data[at] : 0; }

// [0] DC tables, [1] AC tables
using DefinedTables = bool[2][kHuffmanSlots];

// Reads the tables of the DHT segment whose length field is at `at` the way stb does: table after table
// while the declared length has bytes left, even past the segment (and as zeros past the file).
bool read_huffman_tables(const uint8_t* data, size_t size, size_t at, DefinedTables& defined) {
  long remaining = static_cast<long>(byte_at(data, size, at) << 8 | byte_at(data, size, at + 1)) - 2;
  at += 2;
  while (remaining > 0) {
    const int table_class = byte_at(data, size, at) >> 4;
    const int slot = byte_at(data, size, at) & 15;
    size_t codes = 0;
    for (size_t i = 1; i <= 16; ++i) codes += byte_at(data, size, at + i);
    if (codes > kMaxHuffmanCodes) return false;
    if (table_class <= 1 && slot < kHuffmanSlots) defined[table_class][slot] = true;
    at += 17 + codes;
    remaining -= static_cast<long>(17 + codes);
  }
  return true;
}

// Whether the scan whose SOS length field is at `at` uses only defined tables: baseline scans use a DC
// and an AC table per component, progressive ones the DC table in a first DC scan and the AC table in
// AC scans (DC refinement reads raw bits).
bool scan_tables_defined(const uint8_t* data, size_t size, size_t at, bool progressive, const DefinedTables& defined) {
  const size_t components = byte_at(data, size, at + 2);
  const size_t after_components = at + 3 + 2 * components;
  const bool dc_scan = byte_at(data, size, after_components) == 0;
  const bool first_pass = byte_at(data, size, after_components + 2) >> 4 == 0;
  const bool uses_dc = !progressive || (dc_scan && first_pass);
  const bool uses_ac = !progressive || !dc_scan;
  for (size_t i = 0; i < components; ++i) {
    const uint8_t tables = byte_at(data, size, at + 4 + 2 * i);
    const int dc = tables >> 4;
    const int ac = tables & 15;
    if (uses_dc && dc < kHuffmanSlots && !defined[0][dc]) return false;
    if (uses_ac && ac < kHuffmanSlots && !defined[1][ac]) return false;
  }
  return true;
}

}  // namespace

const char* jpeg_huffman_problem(const uint8_t* data, size_t size) {
  DefinedTables defined = {};
  bool progressive = false;
  size_t at = 2;  // after the start-of-image marker
  while (at + 1 < size) {
    if (data[at] != 0xff) {
      ++at;  // entropy-coded data of a scan, up to the next marker
      continue;
    }
    const uint8_t marker = data[at + 1];
    const bool without_length = marker == 0x00 || marker == 0xff || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd9);
    if (without_length) {
      at += marker == 0xff ? 1 : 2;  // 0xff00 is a stuffed data byte, 0xffff fill
      continue;
    }
    if (marker == 0xc2) progressive = true;
    if (marker == 0xc4 && !read_huffman_tables(data, size, at + 2, defined)) return "bad DHT header";
    if (marker == 0xda && !scan_tables_defined(data, size, at + 2, progressive, defined)) {
      return "undefined Huffman table";
    }
    if (at + 4 > size) break;
    const size_t length = static_cast<size_t>(data[at + 2]) << 8 | data[at + 3];
    at += 2 + std::max<size_t>(length, 2);
  }
  return nullptr;
}

PngChunkProblem png_chunk_problem(const uint8_t* data, size_t size) {
  size_t at = 8;  // after the signature
  bool seen_image_data = false;
  while (size - at >= 8) {
    const size_t length = static_cast<size_t>(data[at]) << 24 | static_cast<size_t>(data[at + 1]) << 16 |
                          static_cast<size_t>(data[at + 2]) << 8 | data[at + 3];
    if (length > size - at - 8) return PngChunkProblem::truncated;  // 4 more bytes of CRC are not needed to decode
    if (std::memcmp(data + at + 4, "IEND", 4) == 0) return PngChunkProblem::none;
    if (std::memcmp(data + at + 4, "IDAT", 4) == 0) {
      if (!seen_image_data && length == 0) return PngChunkProblem::empty_first_image_data;
      seen_image_data = true;
    }
    at += std::min(size - at, 12 + length);
  }
  return PngChunkProblem::none;
}

}  // namespace oac::detail
