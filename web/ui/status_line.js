// The page's live status line (#status, aria-live): what is being done, and what came of it.

const statusLine = document.querySelector('#status');

export function announce(message, isError = false) {
  statusLine.textContent = message;
  statusLine.classList.toggle('error', isError);
}
