// The page's words about a result, for patients as much as for clinicians: knees, grades, certainty, DICOM facts
// and errors. The model card (thresholds, the KL set's coverage) is passed in; before it arrives the words say less.

import { percent } from '../measures.js';

export const KL_GRADE_NAMES = ['none', 'doubtful', 'minimal', 'moderate', 'severe'];
const SIDE_LABELS = { single: 'single', left: 'left half', right: 'right half' };
const KNEE_TITLES = { single: 'Knee', left: 'Knee on the left half of the image', right: 'Knee on the right half of the image' };
// Short labels drawn on the boxes over the image: halves of the image as shown, not the patient's sides.
const BOX_LABELS = { single: 'Knee', left: 'Left of image', right: 'Right of image' };
const PATIENT_SIDES = { L: "patient's left knee", R: "patient's right knee" };
const LATERALITY_NAMES = { L: 'left knee', R: 'right knee', B: 'both knees', U: 'side not stated' };

/** An error as a sentence: capitalised, with a full stop. */
export function readableError(error) {
  return `${error.charAt(0).toUpperCase()}${error.slice(1)}${/[.!?]$/.test(error) ? '' : '.'}`;
}

export function kneeTitle(knee) {
  const title = KNEE_TITLES[knee.side] ?? 'Knee';
  return PATIENT_SIDES[knee.patient_side] ? `${title} (${PATIENT_SIDES[knee.patient_side]})` : title;
}

/** The knee column of the results table: "left half (L)". */
export function kneeLabel(knee) {
  return `${SIDE_LABELS[knee.side] ?? knee.side}${knee.patient_side ? ` (${knee.patient_side})` : ''}`;
}

/** The status column of the results table for a scored knee. */
export function kneeStatus(knee) {
  return (!knee.in_distribution ? 'Not a knee X-ray' : (knee.oa ? 'OA likely' : 'OA unlikely'))
    + (knee.by_hand ? ' (box set by hand)' : '');
}

export function kneeSentence(knee) {
  const title = `${kneeTitle(knee)}${knee.by_hand ? ', box set by hand' : ''}`;
  if (!knee.in_distribution) return `${title}: this does not look like a knee X-ray.`;
  return `${title}: ${percent(knee.p_oa)} chance of osteoarthritis, ${knee.oa ? 'osteoarthritis likely' : 'osteoarthritis unlikely'}.`;
}

/** The label drawn on a knee's box over the whole image (`knee` null: a new box not scored yet). */
export function boxLabel(knee) {
  if (!knee) return 'New knee box';
  const label = BOX_LABELS[knee.side] ?? 'Knee';
  return knee.patient_side ? `${label} · patient's ${knee.patient_side}` : label;
}

/** What a screen reader says of a knee's box, and how to move it (`knee` null: a new box not scored yet). */
export function boxDescription(knee) {
  const pending = !knee;
  const name = pending ? 'New knee box, not scored yet' : `Box of the ${kneeTitle(knee).replace(/^Knee/, 'knee')}`
    + `${knee.by_hand ? ', set by hand' : ''}`;
  return `${name}. Arrow keys move it, with Shift in bigger steps; plus and minus `
    + `resize it; Enter scores the knee ${pending ? '' : 'again '}from it${pending ? '; Escape removes it' : '; Escape puts it back'}.`;
}

/** The verdict under a knee's probability, at the card's threshold. */
export function verdictText(knee, card) {
  const threshold = card ? percent(card.threshold, 0) : 'its threshold';
  return knee.oa
    ? `Osteoarthritis likely: at or above the model's decision threshold of ${threshold}. `
      + '(Osteoarthritis here means Kellgren–Lawrence grade 2 or higher.)'
    : `Osteoarthritis unlikely: below the model's decision threshold of ${threshold}.`;
}

/** A KL prediction set in words: "KL 2", "KL 1–2", "KL 0, 2". */
function klSetText(grades) {
  const sorted = [...grades].sort((a, b) => a - b);
  if (sorted.length === 1) return `KL ${sorted[0]}`;
  const contiguous = sorted.every((grade, i) => i === 0 || grade === sorted[i - 1] + 1);
  return contiguous ? `KL ${sorted[0]}–${sorted.at(-1)}` : `KL ${sorted.join(', ')}`;
}

/** "Likely grades: KL 1–2 (90% coverage)"; the coverage from the card, left out before the card is known. */
export function klSetLine(klSet, card) {
  const coverage = card?.kl_set?.coverage;
  return `Likely grades: ${klSetText(klSet)}${Number.isFinite(coverage) ? ` (${percent(coverage, 0)} coverage)` : ''}`;
}

/** Why the "likely" level sits where it does (the card's threshold_target), or '' for a card without one. */
function thresholdInWords(card) {
  const sensitivity = card?.threshold_target?.sensitivity;
  if (!Number.isFinite(sensitivity) || !Number.isFinite(card?.threshold)) return '';
  return ` That level, ${percent(card.threshold, 0)}, is set low on purpose: on knee X-rays kept apart to`
    + ` choose it, with a safety margin, at least ${Math.round(sensitivity * 10)} in 10 knees with osteoarthritis`
    + ' reach it, so knees without osteoarthritis sometimes reach it too.';
}

/** How sure the model is about one knee, for a patient. */
export function certaintyInWords(knee, klSet, card) {
  const coverage = card?.kl_set?.coverage;
  const often = Number.isFinite(coverage) ? `about ${Math.round(coverage * 10)} in 10` : 'most';
  const chance = `The model puts the chance that this knee shows osteoarthritis at ${percent(knee.p_oa)}`
    + ` (${knee.oa ? 'at or above' : 'below'} the level at which it says "likely").${thresholdInWords(card)}`;
  if (!klSet.length) return chance;
  const grades = klSet.length === 1
    ? `It points to one grade, ${klSetText(klSet)}`
    : `It cannot tell between ${klSetText(klSet).replace(/^KL /, 'KL grades ')}`;
  return `${chance} ${grades}: for ${often} knees like the ones it was checked on, the true grade is among the grades `
    + 'it names this way.';
}

/** What a DICOM header added to the result (laterality, pixel spacing, frames), in words, or ''. */
export function dicomFacts(summary) {
  const facts = [];
  if (summary.laterality) facts.push(`laterality ${LATERALITY_NAMES[summary.laterality] ?? summary.laterality}`);
  if (summary.pixel_spacing_mm) facts.push(`pixel spacing ${summary.pixel_spacing_mm.join(' × ')} mm`);
  if (summary.frames) facts.push(`only the first of its ${summary.frames} frames was checked`);
  return facts.join(', ');
}

/** The model in words, as the model panel and the printed report name it. */
export function modelName(card) {
  return `${card.name ?? card.model_file ?? 'unknown'} ${card.version ?? ''}`.trim();
}
