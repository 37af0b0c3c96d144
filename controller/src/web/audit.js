// The audit log page (#/audit, admins): who did what, when and from where,
// newest first; filtered by time (county time, Asia/Shanghai), actor,
// action and village; "older" pages further back; the CSV export carries
// the same filters. The filters live in the hash's query
// (#/audit?from=2024-05-01T08:00&to=…&actor=…&action=…&village=…) so a
// reload or a shared link keeps them; `limit` sets the page size.
//
// Stable hooks: [data-audit-form] with [data-audit-from], [data-audit-to],
// [data-audit-actor], [data-audit-action], [data-audit-village],
// [data-audit-apply], [data-audit-clear]; [data-audit-csv] (the export
// link); rows [data-audit-row="<id>"][data-at][data-actor][data-action]
// [data-status]; [data-audit-older], [data-audit-end], [data-audit-empty],
// [data-audit-error], [data-accounts-admin-only].
import { getJSON, loadErrorText } from './api.js';
import { absTime } from './format.js';
import { t } from './i18n.js';
import { isAdmin } from './session.js';
import { setText } from './state.js';
import { field, h, regionIndex, showError } from './ui.js';

const API = '/api/v1';
const PAGE = 50;
const MAX_PAGE = 1000;
// China has kept one offset all year since 1991: county time is UTC+8.
const COUNTY_OFFSET = '+08:00';

// The actions an operator filters by; a key ending in '.' is a prefix.
const ACTIONS = [
  'login', 'login.failed', 'logout', 'password.', 'user.', 'token.', 'schedule.', 'library.', 'quiet_hours.',
  'live.', 'alert.', 'agent.', 'region.', 'directory.', 'config.',
];

// `2024-05-01T08:00` (county time) as Unix ms; null when not a time.
export function countyInputToMs(value) {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return null;
  const ms = Date.parse(`${value.length === 16 ? `${value}:00` : value}${COUNTY_OFFSET}`);
  return Number.isFinite(ms) ? ms : null;
}

// The filters of the hash query as the API's query (without the limit).
function apiQuery(q) {
  const p = new URLSearchParams();
  const from = countyInputToMs(q.get('from'));
  const to = countyInputToMs(q.get('to'));
  if (from !== null) p.set('from_ms', String(from));
  if (to !== null) p.set('to_ms', String(to));
  if (q.get('actor')) p.set('actor', q.get('actor'));
  if (q.get('action')) p.set('action', q.get('action'));
  if (/^\d+$/.test(q.get('village') || '')) p.set('village_id', q.get('village'));
  return p;
}

export function mountAudit(root, query) {
  const q = query || new URLSearchParams();
  root.append(h('div', { class: 'pg-head' }, h('h2', { i18n: 'navAudit' })));
  if (!isAdmin()) {
    root.append(h('p', { class: 'card muted', i18n: 'audAdminOnly', dataset: { accountsAdminOnly: '' } }));
    root.dataset.loaded = 'true';
    return {};
  }
  const size = Math.min(MAX_PAGE, Math.max(1, Number(q.get('limit')) || PAGE));
  const pg = { records: [], users: new Map(), userById: new Map(), tokenById: new Map(), regions: regionIndex([]), more: false };
  const badTime = ['from', 'to'].some((k) => q.get(k) && countyInputToMs(q.get(k)) === null);

  const from = h('input', { type: 'datetime-local', value: q.get('from') || '', dataset: { auditFrom: '' } });
  const to = h('input', { type: 'datetime-local', value: q.get('to') || '', dataset: { auditTo: '' } });
  const actor = h('input', { type: 'text', value: q.get('actor') || '', autocomplete: 'off', spellcheck: false, list: 'audit-actors', dataset: { auditActor: '' } });
  const actors = h('datalist', { id: 'audit-actors' });
  const action = h('select', { dataset: { auditAction: '' } },
    h('option', { value: '', i18n: 'audAnyAction' }),
    ...ACTIONS.map((a) => h('option', { value: a, i18n: actionKey(a) })));
  // An action typed into the link by hand (`schedule.create`) is offered as it is.
  const asked = q.get('action') || '';
  if (asked && !ACTIONS.includes(asked)) action.append(h('option', { value: asked }, asked));
  action.value = asked;
  const village = h('select', { dataset: { auditVillage: '' } }, h('option', { value: '', i18n: 'audAnyVillage' }));
  const csv = h('a', { class: 'plain-btn', download: 'audit.csv', i18n: 'audCsv', dataset: { auditCsv: '' } });
  csv.href = `${API}/audit/export.csv?${apiQuery(q)}`;
  const form = h('form', { class: 'card adm-filters', role: 'search', dataset: { auditForm: '' } },
    field('audFrom', from), field('audTo', to), field('audActor', actor), field('audAction', action), field('audVillage', village),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'primary', i18n: 'audApply', dataset: { auditApply: '' } }),
      h('button', { type: 'button', class: 'plain-btn', i18n: 'audClear', dataset: { auditClear: '' }, on: { click: () => { location.hash = '#/audit'; } } }),
      csv),
    h('p', { class: 'muted small fld wide', i18n: 'audTzNote' }), actors);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (from.value) p.set('from', from.value);
    if (to.value) p.set('to', to.value);
    if (actor.value.trim()) p.set('actor', actor.value.trim());
    if (action.value) p.set('action', action.value);
    if (village.value) p.set('village', village.value);
    if (q.get('limit')) p.set('limit', q.get('limit'));
    const hash = `#/audit${p.toString() ? `?${p}` : ''}`;
    // The router mounts the page again with the new query.
    if (location.hash === hash) location.reload();
    else location.hash = hash;
  });

  const error = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { auditError: '' } });
  const tbody = h('tbody');
  const empty = h('p', { class: 'muted empty-note', hidden: true, dataset: { auditEmpty: '' } });
  const table = h('table', { class: 'grid adm-grid' },
    h('thead', {}, h('tr', {}, ...['audTime', 'audWho', 'audWhere', 'audAction', 'audTarget', 'audOutcome'].map((k) => h('th', { i18n: k })))),
    tbody);
  const older = h('button', { type: 'button', class: 'plain-btn', i18n: 'audOlder', hidden: true, dataset: { auditOlder: '' }, on: { click: () => load(true) } });
  const end = h('p', { class: 'muted small', i18n: 'audEnd', hidden: true, dataset: { auditEnd: '' } });
  root.append(form, error, h('div', { class: 'card table-wrap' }, table, empty), h('div', { class: 'form-actions' }, older, end));

  function who(r) {
    const m = /^(user|token):(.*)$/.exec(r.actor);
    if (m && m[1] === 'user') {
      const u = pg.users.get(m[2]);
      return u && u.display_name !== u.name ? `${u.display_name} (${u.name})` : m[2];
    }
    if (m) return t('audToken', m[2]);
    if (r.actor === 'local') return t('audLocal');
    if (r.actor === 'controller') return t('audController');
    if (r.actor === 'anonymous') return t('audAnonymous');
    return r.actor;
  }

  // What was acted on, in words where the page knows the names (an
  // account, a token, a village); the request itself below, for the record.
  function target(r) {
    const v = r.village_id !== null && r.village_id !== undefined ? pg.regions.byId.get(r.village_id) : null;
    const m = /^(?:\/api\/v1)?\/(users|tokens)\/(\d+)$/.exec(r.path);
    let named = null;
    if (m && m[1] === 'users' && pg.userById.has(Number(m[2]))) {
      const u = pg.userById.get(Number(m[2]));
      named = t('audAccountNamed', u.display_name === u.name ? u.name : `${u.display_name} (${u.name})`);
    } else if (m && m[1] === 'tokens' && pg.tokenById.has(Number(m[2]))) {
      named = t('audTokenNamed', pg.tokenById.get(Number(m[2])).name);
    } else if (v) {
      named = t('audVillageNamed', v.name);
    }
    return [
      named ? h('div', {}, named) : null,
      r.method ? h('div', { class: 'mono small muted' }, `${r.method} ${r.path.replace(/^\/api\/v1/, '')}`) : null,
    ];
  }

  function outcome(r) {
    const kind = r.status < 300 ? 'ok' : r.status < 500 ? 'refused' : 'failed';
    return [
      h('span', { class: `adm-outcome o-${kind}` }, t(`audOutcome_${kind}`), ` (${r.status})`),
      r.detail ? h('div', { class: 'muted small adm-detail' }, r.detail) : null,
    ];
  }

  function row(r) {
    return h('tr', { dataset: { auditRow: String(r.id), at: String(r.at_ms), actor: r.actor, action: r.action, status: String(r.status) } },
      h('td', { class: 'small' }, absTime(r.at_ms)),
      h('td', {}, who(r)),
      h('td', { class: 'mono small' }, r.ip || '—'),
      h('td', {}, h('div', {}, actionLabel(r.action)), h('div', { class: 'mono small muted' }, r.action)),
      h('td', {}, ...target(r)),
      h('td', {}, ...outcome(r)));
  }

  function paint() {
    const filtered = [...q.keys()].some((k) => k !== 'limit');
    setText(empty, t(filtered ? 'audEmptyFiltered' : 'audEmpty'));
    empty.hidden = pg.records.length > 0;
    tbody.replaceChildren(...pg.records.map(row));
    older.hidden = !pg.more;
    end.hidden = pg.more || pg.records.length === 0;
    const villages = pg.regions.villages;
    if (village.options.length !== villages.length + 1) {
      village.replaceChildren(village.options[0], ...villages.map((v) => h('option', { value: String(v.id) }, v.name)));
      village.value = /^\d+$/.test(q.get('village') || '') ? q.get('village') : '';
    }
    actors.replaceChildren(...[...pg.users.values()].map((u) => h('option', { value: u.name }, u.display_name)));
  }

  // One page: the newest `size` records, or the `size` before the oldest
  // shown (`before_id`). One more is asked for, to know whether there are
  // older ones.
  async function load(more) {
    const p = apiQuery(q);
    if (more && pg.records.length) p.set('before_id', String(pg.records[pg.records.length - 1].id));
    p.set('limit', String(size + 1));
    older.disabled = true;
    try {
      const list = await getJSON(`/audit?${p}`);
      const got = Array.isArray(list) ? list : [];
      pg.more = got.length > size;
      pg.records = pg.records.concat(got.slice(0, size));
      showError(error, badTime ? t('audBadTime') : '');
    } catch (e) {
      showError(error, t('audLoadFailed', loadErrorText(e)));
    }
    older.disabled = false;
    paint();
    root.dataset.loaded = 'true';
  }

  async function start() {
    try {
      const [users, tokens, regions] = await Promise.all([getJSON('/users'), getJSON('/tokens'), getJSON('/regions')]);
      const list = Array.isArray(users) ? users : [];
      pg.users = new Map(list.map((u) => [u.name, u]));
      pg.userById = new Map(list.map((u) => [u.id, u]));
      pg.tokenById = new Map((Array.isArray(tokens) ? tokens : []).map((tk) => [tk.id, tk]));
      pg.regions = regionIndex(regions);
    } catch (_) {
      // Names and villages are a nicety; the records below say who and where anyway.
    }
    await load(false);
  }

  start();
  return { relabel: paint };
}

function actionKey(a) {
  return `audAct_${a.replace(/\.$/, '').replace(/\./g, '_')}`;
}

// An action in words: its own name, else its family's ("schedule.*"),
// else the raw name.
function actionLabel(action) {
  if (ACTIONS.includes(action)) return t(actionKey(action));
  const family = `${action.split('.')[0]}.`;
  if (ACTIONS.includes(family)) return t(actionKey(family));
  return action;
}
