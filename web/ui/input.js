// Where files come from: the file, folder and camera pickers, a drop anywhere on the page (files or a folder) and
// paste. A folder (a patient's CD) is sorted first: its X-rays in study and series order, one sentence about the
// files that are not images (../dicom_folder.js decides which are which, the core reads each DICOM header).

import { HEAD_BYTES, sortFolder } from '../dicom_folder.js';
import { announce } from './status_line.js';

const $ = (selector) => document.querySelector(selector);

/** Every file under dropped file-system entries, as [{ file, path }]. */
async function filesInEntries(entries) {
  const found = [];
  for (const entry of entries) {
    if (entry.isFile) {
      found.push({ file: await new Promise((resolve, reject) => entry.file(resolve, reject)), path: entry.fullPath.slice(1) });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      // readEntries hands a folder's entries over in batches until it returns none.
      for (let batch = await readBatch(reader); batch.length; batch = await readBatch(reader)) {
        found.push(...await filesInEntries(batch));
      }
    }
  }
  return found;
}

function readBatch(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

/**
 * Takes files from every source and hands them to `checkFiles(files, { names, series, folderSummary })`; a folder's
 * files come with their paths (`names`), their study and series (`series`) and the sentence about its other files.
 * `describeDicom(buffer)` resolves with the core's header facts of one file ({ ok, error, facts }), and
 * `readDicomdir(buffer)` with the files a DICOMDIR lists ({ ok, error, entries }).
 */
export function watchInput({ checkFiles, describeDicom, readDicomdir }) {
  async function checkFolder(found) {
    announce('Looking through the folder…');
    const pathOf = new Map(found.map(({ file, path }) => [file, path]));
    const sorted = await sortFolder(found.map(({ file }) => file), {
      head: async (file) => new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer()),
      describe: async (file) => describeDicom(await file.arrayBuffer()),
      readDirectory: async (file) => readDicomdir(await file.arrayBuffer()),
      pathOf: (file) => pathOf.get(file),
    });
    // one sentence about the files that are not images, one about a DICOMDIR that could not be used
    const summary = [sorted.directory, sorted.notImages].filter(Boolean).map((sentence) => `${sentence}.`).join(' ');
    if (sorted.images.length === 0) {
      announce(`No X-ray image was found in this folder.${summary ? ` ${summary}` : ''}`, true);
      return;
    }
    await checkFiles(sorted.images.map(({ file }) => file), {
      names: pathOf,
      series: new Map(sorted.images.map(({ file, series }) => [file, series])),
      folderSummary: summary,
    });
  }

  const fileInput = $('#file-input');
  const cameraInput = $('#camera-input');
  const folderInput = $('#folder-input');
  const dropZone = $('#drop-zone');
  fileInput.addEventListener('change', () => {
    checkFiles(fileInput.files);
    fileInput.value = '';
  });
  cameraInput.addEventListener('change', () => {
    checkFiles(cameraInput.files);
    cameraInput.value = '';
  });
  folderInput.addEventListener('change', () => {
    const files = Array.from(folderInput.files);
    folderInput.value = '';
    checkFolder(files.map((file) => ({ file, path: file.webkitRelativePath || file.name })));
  });
  $('#choose-files').addEventListener('click', () => fileInput.click());
  $('#choose-folder').addEventListener('click', () => folderInput.click());
  $('#take-photo').addEventListener('click', () => cameraInput.click());

  // A file dropped anywhere is taken, instead of the browser navigating away to it.
  document.addEventListener('dragover', (event) => {
    event.preventDefault();
    dropZone.classList.add('dragging');
  });
  document.addEventListener('dragleave', (event) => {
    if (!event.relatedTarget) dropZone.classList.remove('dragging');
  });
  document.addEventListener('drop', (event) => {
    event.preventDefault();
    dropZone.classList.remove('dragging');
    // Entries must be taken while the event lasts; a folder among them makes the drop a folder's.
    const entries = Array.from(event.dataTransfer?.items ?? [], (item) => item.webkitGetAsEntry?.()).filter(Boolean);
    if (entries.some((entry) => entry.isDirectory)) filesInEntries(entries).then(checkFolder);
    else checkFiles(event.dataTransfer?.files);
  });

  document.addEventListener('paste', (event) => {
    const files = Array.from(event.clipboardData?.files ?? []);
    if (files.length) {
      event.preventDefault();
      checkFiles(files);
    } else if (event.clipboardData?.types.includes('text/plain') && !event.target.closest?.('input, textarea')) {
      announce('The clipboard holds text, not an image. Copy an X-ray image and paste again.', true);
    }
  });
}
