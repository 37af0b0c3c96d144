// The dashboard's operator alarms (运维告警): the open alarms, newest
// first, one sentence each in the operator's language, how long ago, and
// an acknowledge button (not for viewers); kept current by the event
// stream's `alarm` events and reloaded whenever some may have been missed.
//
// Stable hooks: #alarms[data-loaded][data-count], #alarms-count (the badge),
// #alarms-empty ("all clear"), #alarms-error, and per alarm
// [data-alarm-id="<id>"][data-kind][data-acknowledged="true|false"]
// holding [data-alarm-text] and [data-alarm-ack="<id>"] (the button).
import { apiMessage, getJSON, loadErrorText, sendJSON } from './api.js';
import { t } from './i18n.js';
import { absTime, durationText, formatBytes, relTime } from './format.js';
import { session } from './session.js';
import { $, setText } from './state.js';
import { onAlarmEvent } from './sync.js';
import { h } from './ui.js';

const LIMIT = 200;
const REFRESH_MS = 30000;

// Open alarms by id, and the rows showing them.
const open = new Map();
const rows = new Map();
let loadError = null;
let loading = null;
let reloadAgain = false;

export function startAlarms() {
  if (!$('alarms')) return;
  onAlarmEvent((a) => (a ? absorb(a) : load()));
  load();
  setInterval(paintTimes, REFRESH_MS);
}

// Repaints every sentence in the current language.
export function relabelAlarms() {
  if (!$('alarms')) return;
  for (const row of rows.values()) row.sig = null;
  paint();
}

function load() {
  if (loading) {
    reloadAgain = true;
    return;
  }
  loading = (async () => {
    try {
      const body = await getJSON(`/alarms?state=open&limit=${LIMIT}`);
      const list = body && Array.isArray(body.alarms) ? body.alarms : [];
      open.clear();
      for (const a of list) if (valid(a) && a.state === 'open' && mine(a)) open.set(a.id, a);
      loadError = null;
    } catch (e) {
      loadError = e;
    }
    $('alarms').dataset.loaded = 'true';
    paint();
  })().finally(() => {
    loading = null;
    if (reloadAgain) {
      reloadAgain = false;
      load();
    }
  });
}

function valid(a) {
  return a && typeof a === 'object' && Number.isFinite(a.id) && typeof a.kind === 'string';
}

// The event stream is not narrowed to a township account's area (the
// list is): keep to the account's own township.
function mine(a) {
  const own = session.user && Number.isInteger(session.user.region_id) ? session.user.region_id : null;
  return own === null || a.township_id === own;
}

// One raise, clear or acknowledgement from the stream.
function absorb(a) {
  if (!valid(a) || !mine(a)) return;
  if (a.state === 'open') open.set(a.id, a);
  else open.delete(a.id);
  paint();
}

function canAcknowledge() {
  const u = session.user;
  return !u || u.role !== 'viewer';
}

function paint() {
  const section = $('alarms');
  if (!section) return;
  const list = [...open.values()].sort((a, b) => b.raised_ms - a.raised_ms || b.id - a.id);
  const ul = $('alarms-list');
  for (const [id, row] of rows) {
    if (!open.has(id)) {
      row.li.remove();
      rows.delete(id);
    }
  }
  const nodes = list.map((a) => {
    let row = rows.get(a.id);
    if (!row) {
      row = buildRow(a);
      rows.set(a.id, row);
    }
    paintRow(row, a);
    return row.li;
  });
  ul.replaceChildren(...nodes);
  const unacknowledged = list.filter((a) => !a.acknowledged_ms).length;
  section.dataset.count = String(list.length);
  section.dataset.unacknowledged = String(unacknowledged);
  const badge = $('alarms-count');
  setText(badge, String(list.length));
  badge.hidden = list.length === 0;
  badge.classList.toggle('al-quiet', unacknowledged === 0);
  badge.title = t('alarmsCountTitle', list.length, unacknowledged);
  const error = $('alarms-error');
  setText(error, loadError ? t('alarmsLoadFailed', loadErrorText(loadError)) : '');
  error.hidden = !loadError;
  const empty = $('alarms-empty');
  setText(empty, t('alarmsAllClear'));
  empty.hidden = list.length > 0 || !!loadError || section.dataset.loaded !== 'true';
}

function buildRow(a) {
  const text = h('span', { class: 'al-text', dataset: { alarmText: '' } });
  const where = h('span', { class: 'al-where small muted' });
  const when = h('span', { class: 'al-when small muted' });
  const ackNote = h('span', { class: 'al-acked small' });
  const error = h('span', { class: 'al-error small', role: 'alert', hidden: true });
  const ack = h('button', { type: 'button', class: 'plain-btn small al-ack', dataset: { alarmAck: String(a.id) } });
  ack.addEventListener('click', () => acknowledge(a.id, ack, error));
  const li = h('li', { class: 'al-item', dataset: { alarmId: String(a.id) } },
    h('span', { class: 'al-icon', 'aria-hidden': 'true' }), h('div', { class: 'al-body' }, text, h('div', { class: 'al-meta' }, where, when), ackNote, error), ack);
  return { li, text, where, when, ackNote, ack, error, sig: null };
}

function paintRow(row, a) {
  row.li.dataset.kind = a.kind;
  row.li.dataset.acknowledged = String(!!a.acknowledged_ms);
  const sig = `${a.kind}|${a.acknowledged_ms}|${a.village_name}|${Math.floor(Date.now() / 60000)}`;
  if (row.sig !== sig) {
    row.sig = sig;
    setText(row.text, sentence(a));
    setText(row.where, [a.township_name, a.village_code].filter(Boolean).join(' · '));
    setText(row.ackNote, a.acknowledged_ms ? t('alarmsAcked', actorName(a.acknowledged_by), relTime(a.acknowledged_ms)) : '');
    row.ackNote.hidden = !a.acknowledged_ms;
    setText(row.ack, t('alarmsAck'));
  }
  setText(row.when, t('alarmsRaised', relTime(a.raised_ms)));
  row.when.title = absTime(a.raised_ms);
  row.ack.hidden = !canAcknowledge() || !!a.acknowledged_ms;
}

// Who acknowledged, as the API names them: "李伟 (li.wei)" ("user:li.wei"
// in alarms acknowledged before the display name was kept).
function actorName(actor) {
  if (!actor) return '—';
  return String(actor).replace(/^user:/, '');
}

// Refreshes "how long ago" and the offline durations.
function paintTimes() {
  for (const [id, row] of rows) {
    const a = open.get(id);
    if (a) paintRow(row, a);
  }
}

// The alarm in one sentence, in the current language.
export function sentence(a) {
  const v = a.village_name || a.village_code || `#${a.village_id}`;
  const d = a.detail && typeof a.detail === 'object' ? a.detail : {};
  switch (a.kind) {
    case 'offline': {
      const since = Number.isFinite(d.offline_since_ms) ? d.offline_since_ms : a.raised_ms;
      return t('alarmOffline', v, durationText(Math.max(0, Date.now() - since)));
    }
    case 'amplifier':
      return t('alarmAmplifier', v);
    case 'clock':
      return Number.isFinite(d.clock_offset_ms)
        ? t('alarmClock', v, (Math.abs(d.clock_offset_ms) / 1000).toFixed(1))
        : t('alarmClockPlain', v);
    case 'disk':
      return Number.isFinite(d.disk_free_bytes) ? t('alarmDisk', v, formatBytes(d.disk_free_bytes)) : t('alarmDiskPlain', v);
    case 'sync':
      return d.sync_error ? t('alarmSync', v, String(d.sync_error)) : t('alarmSyncPlain', v);
    case 'emergency_refused':
      return t('alarmEmergencyRefused', v);
    default:
      return t('alarmOther', v, a.kind);
  }
}

async function acknowledge(id, button, error) {
  button.disabled = true;
  error.hidden = true;
  try {
    const res = await sendJSON('POST', `/alarms/${id}/acknowledge`);
    if (res.status >= 200 && res.status < 300) {
      const a = res.data && res.data.alarm ? res.data.alarm : res.data;
      if (valid(a)) absorb(a);
      else if (open.has(id)) absorb({ ...open.get(id), acknowledged_ms: Date.now(), acknowledged_by: session.user ? `${session.user.display_name} (${session.user.name})` : '' });
    } else {
      setText(error, t('alarmsAckFailed', apiMessage(res)));
      error.hidden = false;
    }
  } catch (e) {
    setText(error, t('alarmsAckFailed', loadErrorText(e)));
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}
