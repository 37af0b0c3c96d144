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
//   #village-panel [data-field="sync"] dd[data-sync]
//                                       an agent's sync state: up_to_date |
//                                       downloading | failed | none
//   [data-village-day-link]             the panel's link to the village's day
//   #alarms[data-loaded][data-count]    the operator alarms (alarms.js
//                                       lists its hooks)
//   window.__errors                     script errors seen on the page
//
// The operator pages (router.js; hash routes #/library, #/schedules,
// #/schedules/new, #/schedules/<id>, #/week, #/village/<id>/<day>):
//   [data-nav="dashboard|library|schedules|week"]   the navigation links
//   body[data-view]                     dashboard | library | schedules |
//                                       schedule | week | village-day
//   #page > [data-page][data-loaded="true"]   the open page, data loaded
//   library: [data-lib-file], [data-lib-upload-title],
//     [data-lib-upload-category], [data-lib-upload-form],
//     [data-upload-progress][data-percent], [data-upload-status],
//     [data-upload-error], [data-lib-item="<id>"][data-title],
//     [data-lib-play|edit|delete="<id>"], [data-lib-confirm-delete="<id>"],
//     [data-lib-row-error="<id>"], [data-lib-player], [data-tts-form]
//   schedules: [data-schedule-row="<id>"][data-name], [data-new-schedule],
//     [data-quiet-form], [data-quiet-window], [data-quiet-status]
//   editor: [data-schedule-form], [data-ed-name], [data-playlist-add],
//     [data-playlist-add-button], [data-playlist-row="<item id>"],
//     [data-rec-kind], [data-rec-time], [data-rec-day="Mon"…],
//     [data-target-county], [data-target-township="<id>"],
//     [data-target-village="<id>"], [data-target-tag="<tag>"],
//     [data-preview][data-state="idle|loading|ok|error"],
//     [data-occurrence="<ms>"], [data-conflict="<other id>"][data-role]
//     [data-outcome], [data-form-error], [data-save], [data-delete]
//   week: [data-week-cell="<village id>/<day>"] holding
//     [data-plan-item="<schedule id>"] and [data-plan-skipped]
//   village day: [data-plan-item="<schedule id>"] rows,
//     [data-play-event][data-outcome], [data-amp-confirmed]
//   live console (#/live, #/live/<id>): [data-live-form],
//     [data-live-priority="paging|emergency"], [data-live-source=
//     "microphone|library|text"], [data-live-item], [data-live-text],
//     [data-live-title], [data-live-volume], the targets as in the editor,
//     [data-live-start], [data-live-confirm] (a dialog) with
//     [data-live-confirm-text] and [data-live-confirm-ok],
//     [data-live-error][data-status="409|422|…"], [data-live-new];
//     [data-live-session="<id>"][data-ended] holding [data-live-elapsed],
//     [data-mic-level][data-peak-db][data-chunks], [data-live-stop],
//     [data-live-village="<id>"][data-state="offline|sent|receiving|
//     playing|refused|preempted|ended|none"][data-amp="on|waiting"], and
//     after the end [data-live-report][data-played][data-villages] with
//     rows [data-report-agent][data-report-village][data-played] and
//     [data-frames-lost]; the session lists' rows [data-live-row="<id>"]
//     [data-live="true|false"]
//
// The modules, each one responsibility: state.js (shared state, DOM
// helpers), i18n.js (strings), format.js (times, sizes), api.js (requests),
// model.js (agents by village), tree.js (region tree, cards, counts),
// filters.js (filters, collapsing), panel.js (village panel), enrol.js
// (enrolment codes), remove.js (removing an agent), sync.js (loading,
// retry banner, event stream), alarms.js (the operator alarms); the pages: router.js (views by hash),
// ui.js (page helpers), library.js, schedules.js (list, quiet hours),
// editor.js with recurrence.js and targets.js, week.js, villageday.js,
// the live console live.js with livesession.js and mic.js (whose
// AudioWorklet, mic-worklet.js, is loaded by URL); i18n-pages.js and
// i18n-live.js hold their strings. This one wires them up. The imports form no
// cycle. errors.js, the error collector, is a classic script that
// index.html loads before this module.
import { relabelAlarms, startAlarms } from './alarms.js';
import { initEnrol } from './enrol.js';
import { applyFilters, restoreCollapsed, setCollapsed } from './filters.js';
import { initialLang, switchLang, t, tagLabel } from './i18n.js';
import { townshipName } from './model.js';
import { initPanel, paintPanel } from './panel.js';
import { initPassword } from './password.js';
import { initRemove } from './remove.js';
import { initRouter, relabelPage } from './router.js';
import { ensureSession, logout } from './session.js';
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
  relabelAlarms();
  relabelPage();
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

async function start() {
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

  $('logout').addEventListener('click', logout);
  initPassword();
  // Logged in (or the controller has no accounts yet) before anything loads.
  await ensureSession();
  initPanel();
  initEnrol();
  initRemove();
  initRouter();
  startAlarms();
  connectEvents();
  requestLoad(true);
  setInterval(refreshRelativeTimes, RELATIVE_REFRESH_MS);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
