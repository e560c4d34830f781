// A DICOMDIR's directory records (oac::read_dicomdir; PS3.3 annex F, PS3.10 section 8). The records are the items
// of the Directory Record Sequence, but their order there means nothing: each level (the patients, a patient's
// studies, a study's series, a series' files) is a chain of Offset of the Next Directory Record, and a record's
// Offset of Referenced Lower-Level Directory Entity starts the chain below it. Offsets count bytes from the start
// of the file.

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dicom_internal.hpp"
#include "oac/dicom.hpp"

namespace oac {
namespace dicom {
namespace {

const std::vector<uint32_t> kDirectoryTags = {kRootRecordOffsetTag, kDirectoryRecordSequenceTag};
const std::vector<uint32_t> kRecordTags = {
    kNextRecordOffsetTag, kRecordInUseTag,        kLowerLevelOffsetTag, kRecordTypeTag,
    kReferencedFileIdTag, kReferencedSopClassTag, kModalityTag,         kStudyInstanceTag,
    kStudyDescriptionTag, kSeriesInstanceTag,     kSeriesNumberTag,     kSeriesDescriptionTag,
    kInstanceNumberTag,
};

constexpr uint16_t kInactiveRecord = 0x0000;
constexpr size_t kItemDelimiterBytes = 8;

Error directory_damaged(const std::string& detail) { return Error{"The DICOMDIR is damaged: " + detail + "."}; }

// The records by the file offset of their item tag, which is how records name each other.
using Records = std::map<size_t, ImageAttributes>;

Result<Records> read_records(const DataSetReader& reader, const ElementHeader& sequence) {
  Records records;
  size_t at = sequence.value_at;
  // read_elements checked that a defined length fits in the file.
  const size_t end = sequence.length == kUndefinedLength ? reader.size() : sequence.value_at + sequence.length;
  while (at < end) {
    const size_t item_at = at;
    Result<ElementHeader> item = reader.header(at);
    if (!item) return item.error();
    if (item.value().tag == kSequenceDelimiterTag) break;
    if (item.value().tag != kItemTag) {
      return directory_damaged("its record sequence holds " + tag_name(item.value().tag) + " instead of a record");
    }
    Result<size_t> item_end = reader.item_end(item.value());
    if (!item_end) return item_end.error();
    const size_t content_end =
        item.value().length == kUndefinedLength ? item_end.value() - kItemDelimiterBytes : item_end.value();
    Result<ImageAttributes> record = read_elements(reader, item.value().value_at, content_end, kRecordTags);
    if (!record) return record.error();
    records.emplace(item_at, std::move(record).value());
    at = item_end.value();
  }
  return records;
}

// The study and series records a record lies under.
struct Context {
  const ImageAttributes* study = nullptr;
  const ImageAttributes* series = nullptr;
};

// "DICOM\ST000001\IM000001" → "DICOM/ST000001/IM000001"; CS values may pad each component with spaces.
std::string file_path(const std::string& file_id) {
  std::string path;
  size_t start = 0;
  while (true) {
    const size_t end = file_id.find('\\', start);
    std::string component = file_id.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const size_t first = component.find_first_not_of(' ');
    const size_t last = component.find_last_not_of(' ');
    if (!path.empty()) path += '/';
    if (first != std::string::npos) path += component.substr(first, last - first + 1);
    if (end == std::string::npos) return path;
    start = end + 1;
  }
}

DirectoryEntry entry_of(const ImageAttributes& record, std::string record_type, const Context& context) {
  static const ImageAttributes kNoRecord;
  const ImageAttributes& study = context.study != nullptr ? *context.study : kNoRecord;
  const ImageAttributes& series = context.series != nullptr ? *context.series : kNoRecord;
  DirectoryEntry entry;
  entry.file = file_path(record.text(kReferencedFileIdTag));
  entry.facts.sop_class_uid = record.text(kReferencedSopClassTag);
  entry.facts.modality = series.text(kModalityTag);
  entry.facts.study_instance_uid = study.text(kStudyInstanceTag);
  entry.facts.study_description = study.text(kStudyDescriptionTag);
  entry.facts.series_instance_uid = series.text(kSeriesInstanceTag);
  entry.facts.series_description = series.text(kSeriesDescriptionTag);
  entry.facts.series_number = series.whole_number(kSeriesNumberTag);
  entry.facts.instance_number = record.whole_number(kInstanceNumberTag);
  // The record type is the DICOMDIR's word for what the file holds; only IMAGE records reference pixel data.
  entry.facts.has_pixel_data = record_type == "IMAGE";
  entry.record_type = std::move(record_type);
  return entry;
}

Result<std::vector<DirectoryEntry>> follow_records(const Records& records, uint32_t root, ByteOrder order) {
  std::vector<DirectoryEntry> entries;
  std::set<size_t> visited;
  // Chains still to follow, the innermost last: where each goes on, and the study and series it lies in.
  std::vector<std::pair<size_t, Context>> pending{{root, Context{}}};
  while (!pending.empty()) {
    const auto [offset, context] = pending.back();
    pending.pop_back();
    if (offset == 0) continue;  // the end of a chain
    const auto found = records.find(offset);
    if (found == records.end()) {
      return directory_damaged("a record offset points at byte " + std::to_string(offset) + ", where no record starts");
    }
    if (!visited.insert(offset).second) return directory_damaged("its records link back to one another in a loop");
    const ImageAttributes& record = found->second;
    pending.emplace_back(record.unsigned_long(kNextRecordOffsetTag, order).value_or(0), context);
    if (record.unsigned_short(kRecordInUseTag, order) == kInactiveRecord) continue;
    std::string record_type = record.text(kRecordTypeTag);
    Context inner = context;
    if (record_type == "STUDY") inner.study = &record;
    if (record_type == "SERIES") inner.series = &record;
    if (!record.text(kReferencedFileIdTag).empty()) entries.push_back(entry_of(record, std::move(record_type), context));
    // Pushed last, so that a record's lower level is read before the records after it.
    pending.emplace_back(record.unsigned_long(kLowerLevelOffsetTag, order).value_or(0), inner);
  }
  return entries;
}

}  // namespace
}  // namespace dicom

Result<std::vector<DirectoryEntry>> read_dicomdir(const uint8_t* data, size_t size) {
  using namespace dicom;
  if (data == nullptr || !looks_like_dicom(data, size)) return Error{"The DICOMDIR is not a DICOM file."};
  Result<FileStart> start = read_file_meta({data, size});
  if (!start) return start.error();
  const std::string& sop_class = start.value().media_storage_sop_class_uid;
  if (sop_class != kDirectorySopClass) {
    return Error{"The file named DICOMDIR is not a DICOM directory: its SOP class is " +
                 (sop_class.empty() ? std::string("not given") : sop_class) + "."};
  }
  // Deflate would change the offsets the records name each other by; PS3.10 has a DICOMDIR in explicit VR.
  const TransferSyntax* syntax = find_transfer_syntax(start.value().transfer_syntax_uid);
  if (syntax == nullptr || syntax->coding == PixelCoding::deflated) {
    return Error{"The DICOMDIR uses the transfer syntax " + start.value().transfer_syntax_uid +
                 ", in which a directory cannot be read."};
  }
  const DataSetReader reader({data, size}, syntax->encoding);
  Result<ImageAttributes> directory = read_elements(reader, start.value().data_set_at, size, kDirectoryTags);
  if (!directory) return directory.error();
  const auto sequence = directory.value().headers.find(kDirectoryRecordSequenceTag);
  const std::optional<uint32_t> root = directory.value().unsigned_long(kRootRecordOffsetTag, syntax->encoding.order);
  if (sequence == directory.value().headers.end() || !root) {
    return directory_damaged("it lacks its Directory Record Sequence or the offset of its first record");
  }
  Result<Records> records = read_records(reader, sequence->second);
  if (!records) return records.error();
  return follow_records(records.value(), root.value(), syntax->encoding.order);
}

}  // namespace oac
