// Sample X-rays from the shared datasets, the same files for the end-to-end tests and the benchmark, and
// the reader of the CSV manifests that list the datasets' files.

import path from 'node:path';
import { DATASETS } from './paths.mjs';

export const SEED_DATASET_DIR = path.join(DATASETS, 'Osteoarthritis_Dataset');
export const SAMPLES = {
  // 224×224 8-bit grey OAI crop: one knee.
  single: path.join(SEED_DATASET_DIR, 'test', 'Normal', '9000622L.png'),
  // 640×161 RGB: two knees side by side.
  bilateral: path.join(SEED_DATASET_DIR, 'test', 'Normal', 'NormalG0 (468).png'),
  // 300×162 16-bit grey.
  sixteenBit: path.join(SEED_DATASET_DIR, 'test', 'Normal', 'NormalG0 (374).png'),
};

/** A whole radiograph as people have them: 2180×2660 8-bit JPEG, both knees, long femur and tibia, markers. */
export const WHOLE_RADIOGRAPH = path.join(DATASETS, 'full-radiographs', 'normal_N14.jpg');

/** Splits one CSV line into fields (quotes as RFC 4180 writes them). */
export function parseCsvLine(line) {
  const fields = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const char = line[i];
    if (quoted) {
      if (char === '"' && line[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (char === '"') {
        quoted = false;
      } else {
        field += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === ',') {
      fields.push(field);
      field = '';
    } else {
      field += char;
    }
  }
  fields.push(field);
  return fields;
}
