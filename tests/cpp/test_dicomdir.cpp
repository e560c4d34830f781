// The core's DICOMDIR reader against a file set DCMTK's dcmmkdir made (tests/support/make_dicomdir_fixtures.py writes
// it and what each record must say into dicomdir_fixtures/), and against damaged copies of its DICOMDIR.

#include <algorithm>

#include "fixture_folder.hpp"

using namespace oac_test;

namespace {

const std::string kFolder = "dicomdir_fixtures/";

oac::Result<std::vector<oac::DirectoryEntry>> read_dicomdir_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(kFolder + path);
  return oac::read_dicomdir(bytes.data(), bytes.size());
}

std::string broken(const nlohmann::json& manifest, const char* name) {
  return member(member(manifest, "broken"), name).get<std::string>();
}

}  // namespace

TEST_CASE("a DICOMDIR gives every file it lists, with its study and series from the records above", "[dicom]") {
  const nlohmann::json manifest = read_json(kFolder + "dicomdir.json");
  oac::Result<std::vector<oac::DirectoryEntry>> read =
      read_dicomdir_file(member(manifest, "folder").get<std::string>() + "/DICOMDIR");
  INFO(error_of(read));
  REQUIRE(read.ok());
  const std::vector<oac::DirectoryEntry>& entries = read.value();
  const auto& expected = member(manifest, "entries");
  REQUIRE(entries.size() == expected.size());
  for (const auto& want : expected) {
    const std::string file = member(want, "file").get<std::string>();
    INFO(file);
    const auto found = std::find_if(entries.begin(), entries.end(), [&](const auto& entry) { return entry.file == file; });
    REQUIRE(found != entries.end());
    const oac::DicomFacts& facts = found->facts;
    CHECK(found->record_type == member(want, "record_type").get<std::string>());
    CHECK(facts.sop_class_uid == member(want, "sop_class_uid").get<std::string>());
    CHECK(facts.study_instance_uid == member(want, "study_instance_uid").get<std::string>());
    CHECK(facts.study_description == member(want, "study_description").get<std::string>());
    CHECK(facts.series_instance_uid == member(want, "series_instance_uid").get<std::string>());
    CHECK(facts.series_number == member(want, "series_number").get<int>());
    CHECK(facts.instance_number == member(want, "instance_number").get<int>());
    CHECK(facts.has_pixel_data == member(want, "has_pixel_data").get<bool>());
  }
}

TEST_CASE("a damaged DICOMDIR, or another file under its name, is refused with what is wrong", "[dicom]") {
  const nlohmann::json manifest = read_json(kFolder + "dicomdir.json");
  CHECK(error_of(read_dicomdir_file(broken(manifest, "dangling_offset"))).rfind(
            "The DICOMDIR is damaged: a record offset points at byte ", 0) == 0);
  CHECK(error_of(read_dicomdir_file(broken(manifest, "offset_loop"))) ==
        "The DICOMDIR is damaged: its records link back to one another in a loop.");
  CHECK(error_of(read_dicomdir_file(broken(manifest, "not_a_directory"))) ==
        "The file named DICOMDIR is not a DICOM directory: its SOP class is 1.2.840.10008.5.1.4.1.1.1.1.");
  const std::string truncated = error_of(read_dicomdir_file(broken(manifest, "truncated")));
  CHECK(truncated.rfind("The DICOM file is truncated", 0) == 0);
  const std::vector<uint8_t> text = {'[', 'a', 'u', 't', 'o', 'r', 'u', 'n', ']'};
  CHECK(error_of(oac::read_dicomdir(text.data(), text.size())) == "The DICOMDIR is not a DICOM file.");
}
