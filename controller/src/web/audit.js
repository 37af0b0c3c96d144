// Scaffold: replaced by the real page in this session's work.
import { h } from './ui.js';

export function mountAudit(root) {
  root.append(h('div', { class: 'pg-head' }, h('h2', { i18n: 'navAudit' })));
  root.dataset.loaded = 'true';
  return {};
}
