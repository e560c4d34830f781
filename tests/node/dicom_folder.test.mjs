// web/dicom_folder.js, which the page and the CLI sort a folder with (a patient's CD): what counts as DICOM, the
// sentence about the files that are not images, and the order of the images. The core's describeDicom() is stood
// in for by header facts given here; tests/e2e/patient_cd.test.mjs runs the whole thing on a folder DCMTK made.
// run: node --test tests/node/dicom_folder.test.mjs
import assert from 'node:assert/strict';
import { test } from 'node:test';
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

test('a CD sorts into images by study, series and instance, one sentence, and nothing about the DICOMDIR', async () => {
  const facts = (overrides) => ({ sop_class_uid: DX, modality: 'DX', body_part: 'KNEE', study_instance_uid: '1.2.3',
    study_description: 'KNEE', series_instance_uid: '1.2.3.1', series_description: 'AP', series_number: 1,
    instance_number: 1, has_pixel_data: true, ...overrides });
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
  const head = (name) => {
    if (files[name]) return dicomHead();
    return name.endsWith('.png') ? new Uint8Array([0x89, 0x50, 0x4e, 0x47]) : new TextEncoder().encode('Images of');
  };
  const described = [];
  const sorted = await sortFolder(Object.keys(files), {
    head: async (name) => head(name),
    describe: async (name) => {
      described.push(name);
      return files[name];
    },
    pathOf: (name) => name,
  });
  assert.deepEqual(sorted.images, [
    { file: 'DICOM/SE1/IM1', series: 'KNEE, series 1: AP' },
    { file: 'DICOM/SE2/IM1', series: 'KNEE, series 2: LATERAL' },
    { file: 'DICOM/SE2/IM2', series: 'KNEE, series 2: LATERAL' },
    { file: 'DICOM/BROKEN', series: '' },
    { file: 'photo.png', series: '' },
  ]);
  assert.equal(sorted.notImages, '2 files were not images: a report, a presentation state');
  assert.ok(!described.includes('photo.png') && !described.includes('README.TXT'), 'only DICOM files are described');
});
