// Checks for the headers that stb_image 2.27 (Debian 12's libstb-dev) trusts too far, found by
// tests/fuzz and the bad-input corpus:
//  - a JPEG Huffman table (DHT) lists up to 16 x 255 codes, and stb copies them into arrays of 256
//    (stb 2.28 rejects such tables as "bad DHT header");
//  - a PNG image data chunk declares up to 2 GB, and stb allocates that much before reading it, which
//    succeeds natively (the read then runs out of file) but fails in WebAssembly's memory.

#include <algorithm>
#include <cstring>

#include "decoders.hpp"

namespace oac::detail {
namespace {

constexpr size_t kMaxHuffmanCodes = 256;

uint8_t byte_at(const uint8_t* data, size_t size, size_t at) { return at < size ? data[at] : 0; }

// Reads the tables of the DHT segment whose length field is at `at` the way stb does: table after table
// while the declared length has bytes left, even past the segment (and as zeros past the file).
bool huffman_tables_fit(const uint8_t* data, size_t size, size_t at) {
  long remaining = static_cast<long>(byte_at(data, size, at) << 8 | byte_at(data, size, at + 1)) - 2;
  at += 2;
  while (remaining > 0) {
    size_t codes = 0;
    for (size_t i = 1; i <= 16; ++i) codes += byte_at(data, size, at + i);
    if (codes > kMaxHuffmanCodes) return false;
    at += 17 + codes;
    remaining -= static_cast<long>(17 + codes);
  }
  return true;
}

}  // namespace

bool jpeg_huffman_tables_fit(const uint8_t* data, size_t size) {
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
    if (marker == 0xc4 && !huffman_tables_fit(data, size, at + 2)) return false;
    if (at + 4 > size) break;
    const size_t length = static_cast<size_t>(data[at + 2]) << 8 | data[at + 3];
    at += 2 + std::max<size_t>(length, 2);
  }
  return true;
}

bool png_chunks_fit(const uint8_t* data, size_t size) {
  size_t at = 8;  // after the signature
  while (size - at >= 8) {
    const size_t length = static_cast<size_t>(data[at]) << 24 | static_cast<size_t>(data[at + 1]) << 16 |
                          static_cast<size_t>(data[at + 2]) << 8 | data[at + 3];
    if (length > size - at - 8) return false;  // 4 more bytes of CRC are not needed to decode
    if (std::memcmp(data + at + 4, "IEND", 4) == 0) return true;
    at += std::min(size - at, 12 + length);
  }
  return true;
}

}  // namespace oac::detail
