#pragma once
// DICOM Part 10 reader behind oac::decode. See wasm/DICOM.md for what it reads and why.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "oac/image.hpp"
#include "oac/result.hpp"

namespace oac {

// True for a "DICM" marker at offset 128, or, for files written without the 128-byte
// preamble, a first element in group 0002 (file meta) or 0008 (identifying) that parses.
bool looks_like_dicom(const uint8_t* data, size_t size);

// The first frame of the file's image as display-ready samples:
//  - MONOCHROME1/2: one channel; without a VOI window the stored values are kept, shifted
//    left to fill 8 or 16 bits (signed values offset to unsigned; MONOCHROME1 and a negative
//    rescale slope inverted); with a window (center/width, in rescaled units) the window is
//    applied and the result has 16 bits;
//  - RGB: three channels, 8 or 16 bits.
// Pixel Spacing and Laterality go into `metadata`. Every length is checked against `size`;
// unsupported transfer syntaxes and damaged files return an Error naming the problem.
Result<RawImage> decode_dicom(const uint8_t* data, size_t size, const Limits& limits = {});

// What a folder of DICOM files (a patient's CD) is sorted by: the object's kind and where it belongs.
struct DicomFacts {
  std::string sop_class_uid;  // Media Storage SOP Class, else SOP Class UID
  std::string modality;
  std::string body_part;
  std::string study_instance_uid;
  std::string study_description;
  std::string series_instance_uid;
  std::string series_description;
  int series_number = 0;  // 0 where absent
  int instance_number = 0;
  bool has_pixel_data = false;  // false: a report, a presentation state, a directory, ...
};

// The facts of a DICOM file's header, read up to its Pixel Data (a deflated data set is inflated within
// `limits`); an Error for anything that is not a readable DICOM file.
Result<DicomFacts> describe_dicom(const uint8_t* data, size_t size, const Limits& limits = {});

// The DICOMDIR's SOP class, Media Storage Directory Storage: a patient CD's index of its files.
inline constexpr const char* kDirectorySopClass = "1.2.840.10008.1.3.10";

// A file a DICOMDIR lists (PS3.3 annex F): a directory record that references a file, read with the patient,
// study and series records above it.
struct DirectoryEntry {
  // Referenced File ID, its components joined by '/': the file's path from the DICOMDIR's folder, in the case the
  // record gives it (a disc's file system may show another).
  std::string file;
  std::string record_type;  // IMAGE, SR DOCUMENT, PRESENTATION, ...
  // What the records say of the file, as describe_dicom would read it from the file: the SOP class from the
  // record's Referenced SOP Class UID in File, study and series from the records above, and has_pixel_data for
  // an IMAGE record. Body part and, where the series record lacks them, series descriptions are absent.
  DicomFacts facts;
};

// The files a DICOMDIR lists, depth-first in the order of its records (patients, studies, series, files).
// Records marked inactive are left out. An Error for anything but a readable DICOMDIR, including one whose record
// offsets point nowhere or round in a loop.
Result<std::vector<DirectoryEntry>> read_dicomdir(const uint8_t* data, size_t size);

// JPEG Lossless, JPEG-LS, JPEG 2000 and HTJ2K frames are decoded outside the core, by the codecs the page
// and the CLI load when a file needs one (web/codecs/); the core finds the frame and applies everything
// after decoding. decode_dicom refuses such a file with a sentence naming its syntax.

// The transfer syntax UID of a DICOM file whose pixels only an outside codec decodes, or "" for any other
// file. Reads the file meta information only.
std::string outside_codec_syntax(const uint8_t* data, size_t size);

// Frame 1 of such a file, its fragments joined, and what the codec's output must be.
struct CompressedFrame {
  std::string transfer_syntax_uid;
  std::string syntax_name;
  std::vector<uint8_t> codestream;
  int rows = 0;
  int columns = 0;
  int samples_per_pixel = 1;
  int bits_allocated = 0;
  int bits_stored = 0;
  bool is_signed = false;
  std::string photometric;
  int frames = 1;  // Number of Frames; only frame 1 is read
};

Result<CompressedFrame> compressed_frame(const uint8_t* data, size_t size, const Limits& limits = {});

// decode_dicom for such a file, with frame 1's samples as a codec decoded them: rows x columns x samples
// per pixel values, interleaved, each the stored value in its low bits (signed values in two's complement
// of 16 bits or of bits_stored). A count that disagrees with the header is an Error.
Result<RawImage> decode_dicom_with_frame(const uint8_t* data, size_t size, const std::vector<uint16_t>& samples,
                                         const Limits& limits = {});

}  // namespace oac
