// Quantities as the page and its worker write them for people.

export function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function percent(probability, digits = 1) {
  return `${(probability * 100).toFixed(digits)}%`;
}
