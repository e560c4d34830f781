// The batch table: one row per knee (or per file without one), sortable by any column; a file's name opens it.

import { percent } from '../measures.js';
import { hasNoKnee, state } from './page_state.js';
import { kneeLabel, kneeStatus } from './wording.js';

const tableBody = document.querySelector('#results-table tbody');
const sortButtons = document.querySelectorAll('#results-table th button');

function tableRows() {
  return state.entries.flatMap((entry) => {
    if (entry.status === 'waiting' || entry.status === 'working') {
      return [{ entry, knee: '', p_oa: null, kl_grade: null, status: entry.status === 'working' ? 'Checking…' : 'Waiting' }];
    }
    if (!entry.summary.ok) {
      return [{ entry, knee: '', p_oa: null, kl_grade: null, status: `Error: ${entry.summary.error}`, error: entry.summary.error }];
    }
    if (hasNoKnee(entry)) {
      return [{ entry, knee: '', p_oa: null, kl_grade: null, status: 'No knee joint found: open the file to draw its box' }];
    }
    return entry.summary.knees.map((knee) => ({
      entry,
      knee: kneeLabel(knee),
      kneeResult: knee,
      p_oa: knee.in_distribution ? knee.p_oa : null,
      kl_grade: knee.in_distribution ? knee.kl_grade : null,
      status: kneeStatus(knee),
    }));
  });
}

/** The table's rows in the order shown: { entry, knee, kneeResult?, p_oa, kl_grade, status }. */
export function sortedRows() {
  const rows = tableRows();
  const { key, direction } = state.sort;
  if (!key) return rows;
  const sign = direction === 'ascending' ? 1 : -1;
  const value = (row) => (key === 'file' ? row.entry.name : row[key]);
  return rows.sort((a, b) => {
    const left = value(a);
    const right = value(b);
    if (left === null || left === right) return left === right ? 0 : 1; // empty cells last
    if (right === null) return -1;
    return sign * (typeof left === 'number' ? left - right : String(left).localeCompare(String(right), undefined, { numeric: true }));
  });
}

function fileCell(entry, onOpen) {
  const cell = document.createElement('td');
  const open = document.createElement('button');
  open.type = 'button';
  open.className = 'link';
  open.textContent = entry.name;
  open.addEventListener('click', () => onOpen(entry.id));
  cell.append(open);
  if (entry.series) {
    const series = document.createElement('span');
    series.className = 'series';
    series.textContent = entry.series;
    cell.append(series);
  }
  return cell;
}

/** Draws the table; `onOpen(entryId)` opens a file whose name was chosen. */
export function renderTable(onOpen) {
  const rows = sortedRows().map((row) => {
    const tr = document.createElement('tr');
    tr.dataset.entry = row.entry.id;
    tr.classList.toggle('selected', row.entry.id === state.selectedId);
    const values = [row.knee, row.p_oa === null ? '—' : percent(row.p_oa), row.kl_grade ?? '—', row.status];
    const others = values.map((value, i) => {
      const td = document.createElement('td');
      td.textContent = String(value);
      if (i === 1 || i === 2) td.className = 'number';
      return td;
    });
    tr.append(fileCell(row.entry, onOpen), ...others);
    return tr;
  });
  tableBody.replaceChildren(...rows);
  for (const button of sortButtons) {
    button.parentElement.setAttribute('aria-sort', button.dataset.sort === state.sort.key ? state.sort.direction : 'none');
  }
}

/** A column heading sorts by its column, ascending first, then the other way; `onSorted()` redraws. */
export function bindSorting(onSorted) {
  for (const button of sortButtons) {
    button.addEventListener('click', () => {
      const key = button.dataset.sort;
      state.sort = {
        key,
        direction: state.sort.key === key && state.sort.direction === 'ascending' ? 'descending' : 'ascending',
      };
      onSorted();
    });
  }
}
