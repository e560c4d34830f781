// One knee's result (the #knee-template section): its probability and verdict, the KL grade bars and prediction
// set, the plain-language explanation, and the crop with the heatmap over it.

import { percent } from '../measures.js';
import { boxAttribute } from './box.js';
import {
  KL_GRADE_NAMES, certaintyInWords, kneeTitle, klSetLine, verdictText,
} from './wording.js';

const kneeTemplate = document.querySelector('#knee-template');

export function paint(canvas, rgba, width, height) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(rgba, width, height), 0, 0);
}

/** The bar of each KL grade's probability; the grade shown is the card's rule, not always the tallest bar. */
function klBar(probability, grade, knee, klSet) {
  const item = document.createElement('li');
  item.classList.toggle('shown-grade', grade === knee.kl_grade);
  item.classList.toggle('in-set', klSet.includes(grade));
  const label = document.createElement('span');
  label.className = 'kl-label';
  label.textContent = `KL ${grade} · ${KL_GRADE_NAMES[grade]}`;
  if (klSet.includes(grade)) {
    const mark = document.createElement('span');
    mark.className = 'visually-hidden';
    mark.textContent = ' (one of the likely grades)';
    label.append(mark);
  }
  const track = document.createElement('span');
  track.className = 'kl-track';
  track.setAttribute('aria-hidden', 'true');
  const fill = document.createElement('span');
  fill.className = 'kl-fill';
  fill.style.width = percent(probability);
  track.append(fill);
  const value = document.createElement('span');
  value.className = 'kl-value';
  value.textContent = percent(probability, 0);
  item.append(label, track, value);
  return item;
}

function showScores(view, knee, card) {
  view.querySelector('.probability-value').textContent = percent(knee.p_oa);
  const verdict = view.querySelector('.verdict');
  verdict.textContent = verdictText(knee, card);
  verdict.classList.add(knee.oa ? 'positive' : 'negative');
  const klSet = knee.kl_set ?? [];
  view.dataset.klSet = klSet.join(',');
  view.querySelector('.kl-bars').replaceChildren(...knee.kl_probs.map((probability, grade) => klBar(probability, grade, knee, klSet)));
  if (klSet.length) {
    const setLine = view.querySelector('.kl-set');
    setLine.hidden = false;
    setLine.textContent = klSetLine(klSet, card);
  }
  view.querySelector('.explain').hidden = false;
  view.querySelector('.explain-certainty').textContent = certaintyInWords(knee, klSet, card);
}

function showOutOfDistribution(view) {
  view.querySelector('.probability').hidden = true;
  view.querySelector('.verdict').hidden = true;
  view.querySelector('.kl').hidden = true;
  view.querySelector('.cam-figure').hidden = true;
  view.querySelector('.ood-message').hidden = false;
}

/** The crop and the heatmap over it, with the heatmap's switch and opacity. */
function showFigures(view, images) {
  paint(view.querySelector('.crop-canvas'), images.cropRgba, images.width, images.height);
  paint(view.querySelector('.cam-base'), images.cropRgba, images.width, images.height);
  const overlay = view.querySelector('.cam-overlay');
  paint(overlay, images.camRgba, images.width, images.height);
  const opacity = view.querySelector('.cam-opacity');
  const toggle = view.querySelector('.cam-toggle');
  const update = () => {
    overlay.style.opacity = String(opacity.value / 100);
    overlay.hidden = !toggle.checked;
    opacity.disabled = !toggle.checked;
  };
  opacity.addEventListener('input', update);
  toggle.addEventListener('change', update);
  update();
}

/** Knee `index` of a file as its section; `images` (crop and heatmap) may be null while they are made again. */
export function renderKnee(knee, images, index, card) {
  const view = kneeTemplate.content.firstElementChild.cloneNode(true);
  view.dataset.index = String(index);
  view.dataset.side = knee.side;
  view.dataset.pOa = String(knee.p_oa);
  view.dataset.inDistribution = String(knee.in_distribution);
  view.dataset.box = boxAttribute(knee.box);
  view.dataset.byHand = String(Boolean(knee.by_hand));
  view.querySelector('.knee-title').textContent = kneeTitle(knee);
  if (knee.by_hand) view.querySelector('.by-hand').hidden = false;
  view.dataset.inverted = String(Boolean(knee.inverted));
  if (knee.inverted) view.querySelector('.inverted-note').hidden = false;

  if (knee.in_distribution) showScores(view, knee, card);
  else showOutOfDistribution(view);

  if (images) showFigures(view, images);
  else view.querySelector('.figures').hidden = true;
  return view;
}
