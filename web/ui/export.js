// What leaves the page, made on this device and sent nowhere: the results as CSV, and one file's printed report
// (the browser's print dialog also saves it as a PDF).

import { boxCsvText } from './box.js';
import { sortedRows } from './results_table.js';
import { modelName } from './wording.js';

export const CSV_FILE_NAME = 'knee-oa-results.csv';

function csvField(value) {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The table's rows, in its order, one per knee; box: the knee's square in pixels of the decoded image (half-open). */
function resultsCsv() {
  const header = ['file', 'knee', 'p_oa', 'oa', 'kl_grade', 'kl_set', 'kl0', 'kl1', 'kl2', 'kl3', 'kl4',
    'in_distribution', 'ood_score', 'status', 'box', 'box_set_by_hand'];
  const lines = sortedRows().map((row) => {
    const knee = row.kneeResult;
    return [row.entry.name, row.knee, knee?.p_oa, knee?.oa, knee?.kl_grade, knee?.kl_set?.join(' '),
      ...(knee?.kl_probs ?? ['', '', '', '', '']),
      knee?.in_distribution, knee?.ood_score, row.status, boxCsvText(knee?.box), knee ? Boolean(knee.by_hand) : '']
      .map(csvField).join(',');
  });
  return `${[header.join(','), ...lines].join('\r\n')}\r\n`;
}

export function downloadCsv() {
  const url = URL.createObjectURL(new Blob([resultsCsv()], { type: 'text/csv' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = CSV_FILE_NAME;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The printed report's date and model (name, version, sha256 from the card the worker posted). */
function fillReportFacts(view, card) {
  view.querySelector('.report-date').textContent = new Date().toLocaleString(undefined, { dateStyle: 'long', timeStyle: 'short' });
  view.querySelector('.report-model').textContent = modelName(card ?? {})
    + (card?.untrained ? ' (untrained placeholder: the numbers are meaningless)' : '');
  view.querySelector('.report-sha').textContent = card?.sha256 ?? 'unknown';
}

/**
 * Prints one file's report: the print stylesheet shows only the file named on <body> while it prints, without the
 * app's controls. The class goes again after printing.
 */
export function printReport(entry, view, card) {
  fillReportFacts(view, card);
  for (const other of document.querySelectorAll('.file-result.print-target')) other.classList.remove('print-target');
  view.classList.add('print-target');
  document.body.classList.add('printing-report');
  document.body.dataset.printFile = entry.name;
  window.print();
}

/** Printed from the browser's menu instead of the button: the shown file's report, with its date and model. */
export function preparePrinting(currentCard) {
  window.addEventListener('beforeprint', () => {
    for (const view of document.querySelectorAll('#detail .file-result')) fillReportFacts(view, currentCard());
  });
  window.addEventListener('afterprint', () => {
    document.body.classList.remove('printing-report');
    delete document.body.dataset.printFile;
    for (const view of document.querySelectorAll('.file-result.print-target')) view.classList.remove('print-target');
  });
}
