// web/dicom_folder.js, which the page and the CLI sort a folder with (a patient's CD): what counts as DICOM, the
// sentence about the files that are not images, the order of the images, and when the DICOMDIR decides it. The
// core's describeDicom() and readDicomdir() are stood in for by facts given here, then the core itself reads a file
// set dcmmkdir made (tests/support/make_dicomdir_fixtures.py, in OAC_DICOMDIR_FIXTURES);
// tests/e2e/patient_cd.test.mjs runs the whole thing on a patient's CD in the page and the CLI.
// run: OAC_WASM_BUILD_DIR=build/wasm OAC_DICOMDIR_FIXTURES=build/native/tests/dicom/dicomdir_fixtures \
//        node --test tests/node/dicom_folder.test.mjs
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../../tools/lib/paths.mjs';
import { DIRECTORY_SOP_CLASS, HEAD_BYTES, kindOfFile, notImagesSentence, sortFolder } from '../../web/dicom_folder.js';

const DX = '1.2.840.10008.5.1.4.1.1.1.1';
const BASIC_TEXT_SR = '1.2.840.10008.5.1.4.1.1.88.11';
const GSPS = '1.2.840.10008.5.1.4.1.1.11.1';

function dicomHead() {
  const head = new Uint8Array(HEAD_BYTES);
  head.set([0x44, 0x49, 0x43, 0x4d], 128);
  return head;
}

test('DICOM is told by its preamble and DICM, other images by their signatures, whatever the name', () => {
  assert.equal(kindOfFile(dicomHead()), 'dicom');
  assert.equal(kindOfFile(dicomHead().subarray(0, 131)), '', 'cut before the end of DICM');
  assert.equal(kindOfFile(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 13, 10])), 'image');
  assert.equal(kindOfFile(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])), 'image');
  assert.equal(kindOfFile(new Uint8Array([0x42, 0x4d, 0, 0])), 'image');
  assert.equal(kindOfFile(new TextEncoder().encode('[autorun]\r\nopen=viewer.exe')), '');
  assert.equal(kindOfFile(new Uint8Array(0)), '');
});

test('the files that are not images get one sentence, kinds in a fixed order, one or several of each', () => {
  assert.equal(notImagesSentence([]), '');
  assert.equal(notImagesSentence(['report']), '1 file was not an image: a report');
  assert.equal(notImagesSentence(['presentation state', 'report']), '2 files were not images: a report, a presentation state');
  assert.equal(notImagesSentence([...Array(7).fill('presentation state'), ...Array(5).fill('report')]),
    '12 files were not images: reports, presentation states');
  assert.equal(notImagesSentence(['other object', 'document']), '2 files were not images: a document, another object');
});

const facts = (overrides) => ({ sop_class_uid: DX, modality: 'DX', body_part: 'KNEE', study_instance_uid: '1.2.3',
  study_description: 'KNEE', series_instance_uid: '1.2.3.1', series_description: 'AP', series_number: 1,
  instance_number: 1, has_pixel_data: true, ...overrides });

/** sortFolder over named stand-ins: `files` maps a path to its describeDicom() outcome (null: not DICOM). */
async function sortStandIns(files, readDirectory) {
  const opened = [];
  const head = (name) => {
    if (files[name]) return dicomHead();
    return name.endsWith('.png') ? new Uint8Array([0x89, 0x50, 0x4e, 0x47]) : new TextEncoder().encode('Images of');
  };
  const sorted = await sortFolder(Object.keys(files), {
    head: async (name) => {
      opened.push(name);
      return head(name);
    },
    describe: async (name) => files[name],
    readDirectory,
    pathOf: (name) => name,
  });
  return { ...sorted, opened };
}

test('a CD without a usable DICOMDIR is walked: images by study, series and instance, one sentence each', async () => {
  const files = {
    'DICOMDIR': { ok: true, facts: facts({ sop_class_uid: DIRECTORY_SOP_CLASS, has_pixel_data: false }) },
    'DICOM/SE2/IM2': { ok: true, facts: facts({ series_instance_uid: '1.2.3.2', series_number: 2, instance_number: 2,
      series_description: 'LATERAL' }) },
    'DICOM/SE2/IM1': { ok: true, facts: facts({ series_instance_uid: '1.2.3.2', series_number: 2, instance_number: 1,
      series_description: 'LATERAL' }) },
    'DICOM/SE1/IM1': { ok: true, facts: facts({}) },
    'DICOM/SE3/IM1': { ok: true, facts: facts({ sop_class_uid: BASIC_TEXT_SR, has_pixel_data: false }) },
    'DICOM/SE3/IM2': { ok: true, facts: facts({ sop_class_uid: GSPS, has_pixel_data: false }) },
    'DICOM/BROKEN': { ok: false, error: 'The DICOM file is truncated: it ends before the image data is complete.' },
    'photo.png': null,
    'README.TXT': null,
  };
  const sorted = await sortStandIns(files, async () => ({ ok: false, error: 'The DICOMDIR is damaged: a test.' }));
  assert.deepEqual(sorted.images, [
    { file: 'DICOM/SE1/IM1', series: 'KNEE, series 1: AP' },
    { file: 'DICOM/SE2/IM1', series: 'KNEE, series 2: LATERAL' },
    { file: 'DICOM/SE2/IM2', series: 'KNEE, series 2: LATERAL' },
    { file: 'DICOM/BROKEN', series: '' },
    { file: 'photo.png', series: '' },
  ]);
  assert.equal(sorted.notImages, '2 files were not images: a report, a presentation state');
  assert.equal(sorted.directory, "The DICOMDIR is damaged: a test. The folder's files were read one by one instead");
  assert.deepEqual(sorted.opened, Object.keys(files).filter((name) => name !== 'DICOMDIR'),
    'every file is looked at but the DICOMDIR, which the sentence is about');

  const withoutDicomdir = Object.fromEntries(Object.entries(files).filter(([name]) => name !== 'DICOMDIR'));
  const walked = await sortStandIns(withoutDicomdir, async () => assert.fail('no DICOMDIR to read'));
  assert.deepEqual(walked.images, sorted.images);
  assert.equal(walked.directory, '', 'no DICOMDIR, nothing to say about one');
});

test('a DICOMDIR decides which files under its folder are opened and how they group, whatever their case', async () => {
  const entry = (file, overrides) => ({ file, record_type: 'IMAGE', facts: facts({ series_description: '', ...overrides }) });
  const listing = [
    entry('DICOM/ST1/SE1/IM2', { instance_number: 2 }),
    entry('DICOM/ST1/SE1/IM1', {}),
    entry('DICOM/ST1/SE2/IM1', { series_instance_uid: '1.2.3.2', series_number: 2 }),
    { file: 'DICOM/ST1/SE3/IM1', record_type: 'SR DOCUMENT', facts: facts({ sop_class_uid: BASIC_TEXT_SR, has_pixel_data: false }) },
  ];
  // A disc read back in lower case; a README and an unlisted DICOM beside the DICOMDIR, a DICOM outside its folder.
  const files = Object.fromEntries([...listing.map(({ file }) => `cd/${file.toLowerCase()}`), 'cd/dicomdir', 'cd/readme.txt',
    'cd/dicom/unlisted', 'elsewhere/IM1'].map((name) => [name, name.endsWith('readme.txt') ? null : { ok: true, facts: facts({
    study_instance_uid: '1.2.4', study_description: 'HIP' }) }]));
  let asked;
  const sorted = await sortStandIns(files, async (dicomdir) => {
    asked = dicomdir;
    return { ok: true, error: '', entries: listing };
  });
  assert.equal(asked, 'cd/dicomdir');
  assert.deepEqual(sorted.images, [
    { file: 'cd/dicom/st1/se1/im1', series: 'KNEE, series 1' },
    { file: 'cd/dicom/st1/se1/im2', series: 'KNEE, series 1' },
    { file: 'cd/dicom/st1/se2/im1', series: 'KNEE, series 2' },
    { file: 'elsewhere/IM1', series: 'HIP, series 1: AP' },
  ]);
  assert.equal(sorted.notImages, '1 file was not an image: a report');
  assert.equal(sorted.directory, '');
  assert.deepEqual(sorted.opened, ['elsewhere/IM1'], 'only the file outside the DICOMDIR\'s folder is opened');
});

test('a DICOMDIR that lists files the folder lacks is not used: the folder is walked, and one sentence says so', async () => {
  const listing = ['DICOM/IM1', 'DICOM/IM2', 'DICOM/IM3'].map((file) => ({ file, record_type: 'IMAGE', facts: facts({}) }));
  const files = { 'DICOMDIR': { ok: true, facts: facts({ sop_class_uid: DIRECTORY_SOP_CLASS, has_pixel_data: false }) },
    'DICOM/IM1': { ok: true, facts: facts({}) } };
  const readDirectory = async () => ({ ok: true, error: '', entries: listing });
  const sorted = await sortStandIns(files, readDirectory);
  assert.deepEqual(sorted.images, [{ file: 'DICOM/IM1', series: 'KNEE, series 1: AP' }]);
  assert.equal(sorted.directory,
    "The DICOMDIR lists 2 files that are not in the folder, DICOM/IM2 the first. The folder's files were read one by one instead");
  files['DICOM/IM2'] = { ok: true, facts: facts({ instance_number: 2 }) };
  assert.equal((await sortStandIns(files, readDirectory)).directory,
    "The DICOMDIR lists a file that is not in the folder: DICOM/IM3. The folder's files were read one by one instead");
});

test('the core reads the DICOMDIR dcmmkdir wrote; a damaged one or a missing file sends the folder to be walked', async () => {
  const fixtures = process.env.OAC_DICOMDIR_FIXTURES;
  assert.ok(fixtures, 'OAC_DICOMDIR_FIXTURES names the folder tests/support/make_dicomdir_fixtures.py wrote');
  const wasmDir = process.env.OAC_WASM_BUILD_DIR || path.join(REPO_ROOT, 'build/wasm');
  const { default: createOacCore } = await import(pathToFileURL(path.join(wasmDir, 'oac_core.mjs')).href);
  const core = await createOacCore({ wasmBinary: readFileSync(path.join(wasmDir, 'oac_core.wasm')) });
  const manifest = JSON.parse(readFileSync(path.join(fixtures, 'dicomdir.json'), 'utf8'));
  const cd = path.join(fixtures, manifest.folder);
  const files = readdirSync(cd, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile())
    .map((entry) => path.relative(cd, path.join(entry.path, entry.name)));
  const sort = async (names, dicomdirBytes = readFileSync(path.join(cd, 'DICOMDIR'))) => {
    const described = [];
    const sorted = await sortFolder(names, {
      head: async (name) => readFileSync(path.join(cd, name)).subarray(0, HEAD_BYTES),
      describe: async (name) => {
        described.push(name);
        return core.describeDicom(readFileSync(path.join(cd, name)));
      },
      readDirectory: async () => core.readDicomdir(dicomdirBytes),
      pathOf: (name) => name,
    });
    return { ...sorted, described };
  };

  const read = await sort(files);
  const expectedImages = manifest.entries.filter((entry) => entry.has_pixel_data)
    .sort((a, b) => a.study_instance_uid.localeCompare(b.study_instance_uid) || a.series_number - b.series_number
      || a.instance_number - b.instance_number)
    .map((entry) => ({ file: entry.file, series: `${entry.study_description}, series ${entry.series_number}` }));
  assert.deepEqual(read.images, expectedImages);
  assert.equal(read.notImages, '2 files were not images: a report, a presentation state');
  assert.equal(read.directory, '');
  assert.deepEqual(read.described, [], 'no file is opened for its header');

  const missing = manifest.entries[0].file;
  const walked = await sort(files.filter((name) => name !== missing));
  assert.equal(walked.directory,
    `The DICOMDIR lists a file that is not in the folder: ${missing}. The folder's files were read one by one instead`);
  assert.deepEqual(walked.images.map((image) => image.file),
    expectedImages.map((image) => image.file).filter((file) => file !== missing));
  assert.match(walked.images[0].series, /, series \d: /, 'walked, the series descriptions come from the files');

  for (const [name, sentence] of [
    ['offset_loop', 'The DICOMDIR is damaged: its records link back to one another in a loop.'],
    ['truncated', 'The DICOM file is truncated'],
  ]) {
    const damaged = await sort(files, readFileSync(path.join(fixtures, manifest.broken[name])));
    assert.ok(damaged.directory.startsWith(sentence), `${name}: ${damaged.directory}`);
    assert.match(damaged.directory, /The folder's files were read one by one instead$/);
    assert.deepEqual(damaged.images.map((image) => image.file), expectedImages.map((image) => image.file));
  }
});
