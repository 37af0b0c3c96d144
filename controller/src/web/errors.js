// Loaded as a classic script before the modules, so that the collector is
// in place before any module is fetched, linked or run: a module that fails
// to parse or link is reported to window and lands here too.
'use strict';

// Records uncaught errors so that a test (or an operator with the console
// closed) can see them; it only records.
window.__errors = window.__errors || [];
window.addEventListener('error', (ev) => {
  window.__errors.push(String((ev && (ev.message || ev.error)) || 'error'));
});
window.addEventListener('unhandledrejection', (ev) => {
  const r = ev && ev.reason;
  window.__errors.push(`unhandled rejection: ${String((r && r.message) || r)}`);
});
