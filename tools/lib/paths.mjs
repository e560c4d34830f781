// Where the repository, the model card, the built app and the datasets are: one answer for every tool
// and test (tools/lib/paths.py gives the same answers to the Python side).

import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MODEL_CARD = path.join(REPO_ROOT, 'models', 'oa-inceptionv3.json');
/** The app as tools/app/build_web.mjs writes it by default. */
export const WEB_DIST = path.join(REPO_ROOT, 'web', 'dist');
/** $OAC_DATASETS (tools/oac sets it), else ../shared/datasets beside the checkout. */
export const DATASETS = path.resolve(process.env.OAC_DATASETS || path.join(REPO_ROOT, '..', 'shared', 'datasets'));
