// Small helpers the operator pages share: building elements, county days
// and times of day, a debouncer, and the error line under a form.
import { t } from './i18n.js';
import { setText } from './state.js';

const TZ = 'Asia/Shanghai';

// Builds an element: h('button', {type: 'button', dataset: {x: '1'}}, 'text', child…).
// Text is always set through text nodes; `i18n` sets data-i18n and the text.
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'i18n') {
      e.dataset.i18n = v;
      e.textContent = t(v);
    } else if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    } else if (k in e && typeof e[k] !== 'function' && k !== 'list' && k !== 'form') e[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// A label around a control, its text translated.
export function field(labelKey, control, className) {
  return h('label', { class: className || 'fld' }, h('span', { class: 'fld-l', i18n: labelKey }), control);
}

// The error line under a form: shown with the server's message, hidden when empty.
export function showError(node, message) {
  setText(node, message || '');
  node.hidden = !message;
}

let dayFormat = null;
let timeFormat = null;
function parts(fmt, ms) {
  const p = {};
  for (const part of fmt.formatToParts(new Date(ms))) p[part.type] = part.value;
  return p;
}

// The county day (YYYY-MM-DD, China time) of an instant.
export function countyDay(ms) {
  if (!dayFormat) {
    dayFormat = new Intl.DateTimeFormat('en-CA', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' });
  }
  const p = parts(dayFormat, ms);
  return `${p.year}-${p.month}-${p.day}`;
}

// HH:MM (China time) of an instant.
export function hm(ms) {
  return hms(ms).slice(0, 5);
}

// HH:MM:SS (China time) of an instant.
export function hms(ms) {
  if (!timeFormat) {
    timeFormat = new Intl.DateTimeFormat('en-GB', {
      timeZone: TZ,
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
  }
  const p = parts(timeFormat, ms);
  return `${p.hour}:${p.minute}:${p.second}`;
}

// How far an occurrence moved behind a more important one, in words.
export function movedText(ms) {
  return ms < 60000 ? t('movedBySec', Math.max(1, Math.round(ms / 1000))) : t('movedBy', Math.round(ms / 60000));
}

export const today = () => countyDay(Date.now());

export function isDay(s) {
  return typeof s === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(s) && Number.isFinite(Date.parse(`${s}T00:00:00Z`));
}

// The calendar day `n` days after `day` (both YYYY-MM-DD).
export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// 0 = Monday … 6 = Sunday.
export function weekdayOf(day) {
  return (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7;
}

// "3:25" or "1:02:03" for a duration in ms.
export function clockDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  const pad = (n) => String(n).padStart(2, '0');
  const hours = Math.floor(s / 3600);
  const min = Math.floor((s % 3600) / 60);
  return hours ? `${hours}:${pad(min)}:${pad(s % 60)}` : `${min}:${pad(s % 60)}`;
}

// Calls `fn` once `ms` have passed without another call.
export function debounce(fn, ms) {
  let timer = null;
  const d = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  d.cancel = () => clearTimeout(timer);
  return d;
}

// The regions by level, from /regions: {county, townships, villages, byId}.
export function regionIndex(list) {
  const byCode = (a, b) => String(a.code).localeCompare(String(b.code));
  const all = Array.isArray(list) ? list.filter((r) => r && typeof r === 'object') : [];
  const byId = new Map(all.map((r) => [r.id, r]));
  const townships = all.filter((r) => r.level === 'township').sort(byCode);
  const villages = all.filter((r) => r.level === 'village').sort(byCode);
  const county = all.find((r) => r.level === 'county') || null;
  const villagesOf = new Map(townships.map((tw) => [tw.id, []]));
  for (const v of villages) {
    const list2 = villagesOf.get(v.parent_id);
    if (list2) list2.push(v);
  }
  const tags = [...new Set(villages.flatMap((v) => (Array.isArray(v.tags) ? v.tags.map(String) : [])))].sort();
  return { county, townships, villages, byId, villagesOf, tags };
}

// Why an occurrence was skipped, from the plan view's English reason.
export function reasonText(reason) {
  if (reason === 'quiet hours') return t('reasonQuiet');
  const held = /^held by schedule (\d+) \((.*)\)$/.exec(String(reason));
  if (held) return t('reasonHeld', held[2] || `#${held[1]}`);
  return String(reason);
}
