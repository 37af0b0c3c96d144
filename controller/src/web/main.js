// Dalaba county dashboard: the region tree with every village's live state.
//
// Plain ES2020 modules, no build step, no external resources. All data is
// written with textContent (names come from a CSV import and may contain
// markup). Counts are computed here from /regions and /agents so they
// always agree with the live updates from the event stream.
//
// Stable hooks (tests and operators' scripts rely on them; keep them):
//   body[data-ready="true"]             first load done
//   #live[data-connected]               event stream state
//   #lang-toggle                        switches 中文 / English
//   #count-villages, #count-online, #count-offline, #count-none
//   [data-village-code="<12 digits>"]   a village card (role="button",
//                                       focusable); data-status is
//                                       online | offline | none;
//                                       data-selected="true" while its
//                                       panel is open
//   #village-panel                      the village panel: hidden when
//                                       closed, data-village-code when open
//   #village-panel [data-agent-id]      an agent row, data-online true|false
//   [data-remove-agent="<id>"]          its remove button (asks first;
//                                       #confirm-ok confirms)
//   #create-code, #enrol-code, #enrol-command
//   window.__errors                     script errors seen on the page
//
// The modules, each one responsibility: state.js (shared state, DOM
// helpers), i18n.js (strings), format.js (times, sizes), api.js (requests),
// model.js (agents by village), tree.js (region tree, cards, counts),
// filters.js (filters, collapsing), panel.js (village panel), enrol.js
// (enrolment codes), remove.js (removing an agent), sync.js (loading,
// retry banner, event stream). This one wires them up. The imports form no
// cycle. errors.js, the error collector, is a classic script that
// index.html loads before this module.
import { initEnrol } from './enrol.js';
import { applyFilters, restoreCollapsed, setCollapsed } from './filters.js';
import { initialLang, switchLang, t, tagLabel } from './i18n.js';
import { townshipName } from './model.js';
import { initPanel, paintPanel } from './panel.js';
import { initRemove } from './remove.js';
import { $, setText, state } from './state.js';
import { connectEvents, relabelLive, requestLoad, retryNow } from './sync.js';
import { paintCard, paintCounts, refreshRelativeTimes } from './tree.js';

const RELATIVE_REFRESH_MS = 15000;

function applyLang() {
  document.documentElement.lang = t('htmlLang');
  document.title = t('title');
  for (const n of document.querySelectorAll('[data-i18n]')) setText(n, t(n.dataset.i18n));
  for (const n of document.querySelectorAll('[data-i18n-placeholder]')) n.placeholder = t(n.dataset.i18nPlaceholder);
  for (const n of document.querySelectorAll('[data-i18n-aria]')) n.setAttribute('aria-label', t(n.dataset.i18nAria));
  setText($('lang-toggle'), t('langButton'));
  $('lang-toggle').setAttribute('aria-label', t('langAria'));
  relabelLive();
  if (!state.built) return;
  for (const e of state.twEls.values()) {
    const name = townshipName(e.tw);
    setText(e.name, name);
    setText(e.cName, name);
    setText(e.empty, t('emptyTownship'));
  }
  for (const c of state.cards.values()) {
    c.sig = null;
    for (const chip of c.tagEls) setText(chip, tagLabel(chip.dataset.tag));
  }
  for (const v of state.villages) paintCard(v.id, false);
  paintCounts();
  applyFilters();
  paintPanel();
}

function toggleLang() {
  switchLang();
  applyLang();
}

function start() {
  state.lang = initialLang();
  restoreCollapsed();
  applyLang();

  $('lang-toggle').addEventListener('click', toggleLang);
  $('banner-retry').addEventListener('click', retryNow);
  $('filter-text').addEventListener('input', (ev) => {
    state.filter.text = ev.target.value.trim().toLowerCase();
    applyFilters();
  });
  $('filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('filter-status').addEventListener('change', (ev) => {
    if (ev.target && ev.target.name === 'status') {
      state.filter.status = ev.target.value;
      applyFilters();
    }
  });
  $('township-clear').addEventListener('click', () => {
    state.filter.township = null;
    applyFilters();
  });
  $('expand-all').addEventListener('click', () => {
    for (const tw of state.townships) setCollapsed(tw, false);
  });
  $('collapse-all').addEventListener('click', () => {
    for (const tw of state.townships) setCollapsed(tw, true);
  });

  initPanel();
  initEnrol();
  initRemove();
  connectEvents();
  requestLoad(true);
  setInterval(refreshRelativeTimes, RELATIVE_REFRESH_MS);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
