// Navigation between the views by the location's hash:
//   #/                       the dashboard (region tree, village panel)
//   #/library                the audio library
//   #/schedules              the schedules and the quiet hours
//   #/schedules/new          a new schedule
//   #/schedules/<id>         editing a schedule
//   #/week?start=&region=    the week view
//   #/village/<id>/<day>     one village's day: plan and proof of play
//   #/live                   the live console: start, watch, stop a session
//   #/live/<id>              one live session: its villages live, its report
//   #/reports?month=&township=  service reports
//   #/audit                  the audit log
//   #/accounts               accounts and API tokens (admins)
// body[data-view] names the view; each page is a fresh <section
// data-page="…"> in #page that sets data-loaded="true" once its data is in.
import { mountAccounts } from './accounts.js';
import { mountAudit } from './audit.js';
import { mountEditor } from './editor.js';
import { mountLibrary } from './library.js';
import { mountLive } from './live.js';
import { closePanel } from './panel.js';
import { mountReports } from './reports.js';
import { mountSchedules } from './schedules.js';
import { $ } from './state.js';
import { mountVillageDay } from './villageday.js';
import { mountWeek } from './week.js';

const ROUTES = [
  { re: /^\/?$/, view: 'dashboard', nav: 'dashboard' },
  { re: /^\/library$/, view: 'library', nav: 'library', mount: (s) => mountLibrary(s) },
  { re: /^\/schedules$/, view: 'schedules', nav: 'schedules', mount: (s, m, q) => mountSchedules(s, q) },
  { re: /^\/schedules\/new$/, view: 'schedule', nav: 'schedules', mount: (s) => mountEditor(s, null) },
  { re: /^\/schedules\/(\d+)$/, view: 'schedule', nav: 'schedules', mount: (s, m) => mountEditor(s, Number(m[1])) },
  { re: /^\/week$/, view: 'week', nav: 'week', mount: (s, m, q) => mountWeek(s, q) },
  { re: /^\/live$/, view: 'live', nav: 'live', mount: (s) => mountLive(s, null) },
  { re: /^\/live\/([A-Za-z0-9_.-]+)$/, view: 'live-session', nav: 'live', mount: (s, m) => mountLive(s, m[1]) },
  { re: /^\/reports$/, view: 'reports', nav: 'reports', mount: (s, m, q) => mountReports(s, q) },
  { re: /^\/audit$/, view: 'audit', nav: 'audit', mount: (s, m, q) => mountAudit(s, q) },
  { re: /^\/accounts$/, view: 'accounts', nav: 'accounts', mount: (s, m, q) => mountAccounts(s, q) },
  {
    re: /^\/village\/(\d+)(?:\/([0-9-]+))?$/,
    view: 'village-day',
    nav: 'dashboard',
    mount: (s, m) => mountVillageDay(s, Number(m[1]), m[2] || null),
  },
];

let current = null; // the mounted page: {relabel?, leave?}

function route() {
  const raw = location.hash.replace(/^#/, '');
  const [path, query] = raw.split('?');
  const q = new URLSearchParams(query || '');
  let found = null;
  let match = null;
  for (const r of ROUTES) {
    match = r.re.exec(path);
    if (match) {
      found = r;
      break;
    }
  }
  if (!found) {
    found = ROUTES[0];
    match = [];
  }
  if (current && current.leave) current.leave();
  current = null;
  document.body.dataset.view = found.view;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === found.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const dashboard = found.view === 'dashboard';
  $('view-dashboard').hidden = !dashboard;
  const page = $('page');
  page.hidden = dashboard;
  page.replaceChildren();
  if (!dashboard) {
    closePanel(false);
    const section = document.createElement('section');
    section.className = `pg pg-${found.view}`;
    section.dataset.page = found.view;
    section.dataset.loaded = 'false';
    page.append(section);
    current = found.mount(section, match, q) || {};
    window.scrollTo(0, 0);
  }
}

// Repaints the open page's dynamic parts in the current language (its
// static labels carry data-i18n and are relabelled with the rest).
export function relabelPage() {
  if (current && current.relabel) current.relabel();
}

export function initRouter() {
  window.addEventListener('hashchange', route);
  route();
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}
