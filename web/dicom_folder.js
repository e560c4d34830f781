// A folder as hospitals hand it out: a patient's CD or a PACS export, with a DICOMDIR, files named IM000001
// without an extension, and objects that are not images (structured reports, presentation states). Shared by
// the page (a dropped or picked folder) and the CLI (`tools/oac classify DIR`): which files to check, in which
// order, and one sentence about the rest. The image core reads the DICOMDIR (readDicomdir) and, where there is none
// to go by, each file's header (describeDicom).

/** The DICOMDIR's SOP class (Media Storage Directory Storage): the CD's index, neither an image nor news. */
export const DIRECTORY_SOP_CLASS = '1.2.840.10008.1.3.10';
/** Bytes a file's kind is told by: the 128-byte preamble and "DICM". */
export const HEAD_BYTES = 132;

const startsWith = (head, bytes, at = 0) => bytes.every((byte, i) => head[at + i] === byte);

/**
 * 'dicom' for a file with the DICOM preamble and "DICM" (whatever its name), 'image' for a PNG, JPEG or BMP by
 * its signature, '' for anything else on such a disc (a viewer program, a text file, an autorun file).
 */
export function kindOfFile(head) {
  if (head.length >= HEAD_BYTES && startsWith(head, [0x44, 0x49, 0x43, 0x4d], 128)) return 'dicom';
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47]) || startsWith(head, [0xff, 0xd8, 0xff]) || startsWith(head, [0x42, 0x4d])) {
    return 'image';
  }
  return '';
}

// Objects without pixels, by SOP class prefix (PS3.4 annex B): [prefix, kind, one of them, several].
const NOT_IMAGE_KINDS = [
  ['1.2.840.10008.5.1.4.1.1.88.', 'report', 'a report', 'reports'],
  ['1.2.840.10008.5.1.4.1.1.11.', 'presentation state', 'a presentation state', 'presentation states'],
  ['1.2.840.10008.5.1.4.1.1.104.', 'document', 'a document', 'documents'],
  ['1.2.840.10008.5.1.4.1.1.9.', 'waveform', 'a waveform', 'waveforms'],
];
const OTHER_OBJECT = ['', 'other object', 'another object', 'other objects'];

/** The kind of object a DICOM without pixel data is ('report', 'presentation state', ...), or '' for an image. */
export function notImageKind(facts) {
  if (facts.has_pixel_data) return '';
  return (NOT_IMAGE_KINDS.find(([prefix]) => facts.sop_class_uid.startsWith(prefix)) ?? OTHER_OBJECT)[1];
}

/**
 * "12 files were not images: reports, presentation states", "2 files were not images: a report, a presentation
 * state" (kinds: one per file, in any order), or '' for none.
 */
export function notImagesSentence(kinds) {
  if (kinds.length === 0) return '';
  const names = [...NOT_IMAGE_KINDS, OTHER_OBJECT].filter(([, kind]) => kinds.includes(kind))
    .map(([, kind, one, several]) => (kinds.filter((other) => other === kind).length === 1 ? one : several));
  return kinds.length === 1 ? `1 file was not an image: ${names[0]}`
    : `${kinds.length} files were not images: ${names.join(', ')}`;
}

/** Where an image belongs, as a person reads it: "KNEE BILATERAL, series 2: AP standing". */
export function seriesLabel(facts) {
  const study = facts.study_description || 'Study';
  const series = `series ${facts.series_number || '?'}`;
  return `${study}, ${facts.series_description ? `${series}: ${facts.series_description}` : series}`;
}

const DICOMDIR = 'DICOMDIR';

/** The DICOMDIR nearest the top of the folder, or undefined. Its name is fixed (PS3.10); some discs show it in lower case. */
function findDicomdir(files, pathOf) {
  const depth = (file) => pathOf(file).split('/').length;
  return files.filter((file) => pathOf(file).split('/').pop().toUpperCase() === DICOMDIR)
    .sort((a, b) => depth(a) - depth(b))[0];
}

/**
 * What the DICOMDIR says of the files under its folder: { listed: [{ file, facts }], covered: the files it speaks for
 * (listed or not), note: '' } or, when it cannot be used, { listed: [], covered: the DICOMDIR alone, note: one
 * sentence why }.
 * Its file IDs name files from its own folder, matched whatever their case: discs are often read back in lower case.
 */
async function directoryListing(dicomdir, files, { readDirectory, pathOf }) {
  const folder = pathOf(dicomdir).slice(0, -DICOMDIR.length);
  const under = files.filter((file) => pathOf(file).startsWith(folder));
  const byFileId = new Map(under.map((file) => [pathOf(file).slice(folder.length).toUpperCase(), file]));
  const unused = (why) => ({ listed: [], covered: new Set([dicomdir]),
    note: `${why} The folder's files were read one by one instead` });
  const read = await readDirectory(dicomdir);
  if (!read.ok) return unused(read.error);
  const missing = read.entries.filter((entry) => !byFileId.has(entry.file.toUpperCase()));
  if (missing.length === 1) return unused(`The DICOMDIR lists a file that is not in the folder: ${missing[0].file}.`);
  if (missing.length > 1) {
    return unused(`The DICOMDIR lists ${missing.length} files that are not in the folder, ${missing[0].file} the first.`);
  }
  const listed = read.entries.map((entry) => ({ file: byFileId.get(entry.file.toUpperCase()), facts: entry.facts }));
  return { listed, covered: new Set(under), note: '' };
}

/**
 * Sorts a folder's files: `files` (any order), `pathOf(file)` → its path within the folder ('/' between names),
 * `readDirectory(file)` → the core's readDicomdir() outcome ({ ok, error, entries }) for a DICOMDIR, `head(file)` →
 * its first HEAD_BYTES bytes, `describe(file)` → the core's describeDicom() outcome ({ ok, error, facts }). Returns
 *   { images: [{ file, series }]: the DICOM images grouped by study and series, by instance number within a series;
 *     then PNG, JPEG and BMP files and DICOM files whose header the core refuses (checked like any file, so that
 *     the core says what is wrong), series '';
 *     notImages: the sentence about the files that are not images, or '';
 *     directory: '' or, where a DICOMDIR could not be used, one sentence saying why }.
 * Where there is a DICOMDIR, the files under its folder are the ones it lists, sorted by what its records say, and
 * no other file there is opened; files elsewhere, and all of them when the DICOMDIR is unreadable or lists a file
 * that is not there, are found by walking the folder: each file's kind by its first bytes, a DICOM's by its header.
 */
export async function sortFolder(files, { head, describe, readDirectory, pathOf }) {
  const dicomdir = findDicomdir(files, pathOf);
  const directory = dicomdir ? await directoryListing(dicomdir, files, { readDirectory, pathOf })
    : { listed: [], covered: new Set(), note: '' };
  const dicoms = [];
  const others = [];
  const notImages = [];
  const take = (file, facts) => {
    if (notImageKind(facts)) notImages.push(notImageKind(facts));
    else dicoms.push({ file, facts });
  };
  for (const { file, facts } of directory.listed) take(file, facts);
  for (const file of files.filter((candidate) => !directory.covered.has(candidate))) {
    const kind = kindOfFile(await head(file));
    if (kind === 'image') others.push({ file, series: '' });
    if (kind !== 'dicom') continue;
    const { ok, facts } = await describe(file);
    if (!ok) others.push({ file, series: '' });
    else if (facts.sop_class_uid !== DIRECTORY_SOP_CLASS) take(file, facts);
  }
  const byPath = (a, b) => pathOf(a.file).localeCompare(pathOf(b.file));
  dicoms.sort((a, b) => a.facts.study_instance_uid.localeCompare(b.facts.study_instance_uid)
    || a.facts.series_number - b.facts.series_number
    || a.facts.series_instance_uid.localeCompare(b.facts.series_instance_uid)
    || a.facts.instance_number - b.facts.instance_number
    || byPath(a, b));
  return {
    images: [...dicoms.map(({ file, facts }) => ({ file, series: seriesLabel(facts) })), ...others.sort(byPath)],
    notImages: notImagesSentence(notImages),
    directory: directory.note,
  };
}
