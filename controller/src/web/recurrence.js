// When a schedule fires: the human form (daily, weekdays, chosen days,
// every N weeks, a day of the month, each at times of day) or an advanced
// cron line, to and from the API's recurrence JSON, and in words.
import { t } from './i18n.js';
import { setText } from './state.js';
import { field, h, today } from './ui.js';

// chrono's Weekday names in JSON, Monday first.
export const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const KINDS = ['daily', 'weekdays', 'weekly', 'every_n_weeks', 'month_day', 'cron'];

// "07:00:00" → "07:00"; seconds only when they matter.
function shortTime(s) {
  const v = String(s);
  return v.endsWith(':00') && v.length === 8 ? v.slice(0, 5) : v;
}

// The recurrence in words, in the current language.
export function recurrenceText(rec) {
  if (!rec || typeof rec !== 'object') return '—';
  if (typeof rec.cron === 'string') return t('recCronText', rec.cron);
  const r = rec.rule;
  if (!r || typeof r !== 'object') return '—';
  const times = (Array.isArray(r.times) ? r.times : []).map(shortTime).join(t('listSep'));
  const days = (Array.isArray(r.days) ? r.days : []).map((d) => t(`wd_${d}`)).join(t('listSep'));
  switch (r.kind) {
    case 'daily':
      return t('recDailyText', times);
    case 'weekdays':
      return t('recWeekdaysText', times);
    case 'weekly':
      return t('recWeeklyText', days, times);
    case 'every_n_weeks':
      return t('recEveryText', r.every, days, times, r.anchor);
    case 'month_day':
      return t('recMonthDayText', r.day, times);
    default:
      return '—';
  }
}

// The recurrence fieldset; `onChange` is called on every edit.
export function recurrenceForm(onChange) {
  const kind = h('select', { dataset: { recKind: '' } }, ...KINDS.map((k) => h('option', { value: k, i18n: `rec_${k}` })));
  const times = h('div', { class: 'times', dataset: { recTimes: '' } });
  const addTime = h('button', { type: 'button', class: 'plain-btn small', i18n: 'recAddTime', dataset: { recAddTime: '' } });
  const days = h('div', { class: 'days', dataset: { recDays: '' } },
    ...WEEKDAYS.map((d) => h('label', { class: 'chk' }, h('input', { type: 'checkbox', value: d, dataset: { recDay: d } }), h('span', { i18n: `wd_${d}` }))));
  const every = h('input', { type: 'number', min: 1, max: 52, value: 2, dataset: { recEvery: '' } });
  const anchor = h('input', { type: 'date', value: today(), dataset: { recAnchor: '' } });
  const monthDay = h('input', { type: 'number', min: 1, max: 31, value: 1, dataset: { recMonthDay: '' } });
  const cron = h('input', { type: 'text', class: 'mono', spellcheck: false, placeholder: '0 0 7 * * MON-FRI', dataset: { recCron: '' } });

  const timesRow = h('div', { class: 'fld wide' }, h('span', { class: 'fld-l', i18n: 'recTimes' }), h('div', { class: 'times-row' }, times, addTime));
  const daysRow = h('div', { class: 'fld wide' }, h('span', { class: 'fld-l', i18n: 'recDaysLabel' }), days);
  const everyRow = h('div', { class: 'row' }, field('recEvery', every, 'fld inline'), field('recAnchor', anchor, 'fld inline'));
  const monthRow = field('recMonthDay', monthDay, 'fld inline');
  const cronRow = h('div', { class: 'fld wide' }, field('recCron', cron), h('p', { class: 'muted small', i18n: 'recCronHelp' }));
  const node = h('fieldset', { class: 'card rec' }, h('legend', { i18n: 'recHeading' }), field('recKindLabel', kind, 'fld inline'),
    daysRow, everyRow, monthRow, timesRow, cronRow);

  function timeInput(value) {
    const input = h('input', { type: 'time', step: 1, required: true, value: value || '07:00:00', dataset: { recTime: '' } });
    const rm = h('button', { type: 'button', class: 'plain-btn small', 'aria-label': t('recRemoveTime'), dataset: { recRemoveTime: '' } }, '✕');
    const wrap = h('span', { class: 'time-chip' }, input, rm);
    rm.addEventListener('click', () => {
      if (times.children.length > 1) wrap.remove();
      onChange();
    });
    return wrap;
  }
  addTime.addEventListener('click', () => {
    const last = times.querySelector('input:last-of-type');
    times.append(timeInput(last ? '' : '07:00:00'));
    const inputs = times.querySelectorAll('input');
    inputs[inputs.length - 1].focus();
    onChange();
  });

  function show() {
    const k = kind.value;
    daysRow.hidden = !(k === 'weekly' || k === 'every_n_weeks');
    everyRow.hidden = k !== 'every_n_weeks';
    monthRow.hidden = k !== 'month_day';
    timesRow.hidden = k === 'cron';
    cronRow.hidden = k !== 'cron';
  }
  kind.addEventListener('change', show);
  node.addEventListener('input', onChange);
  node.addEventListener('change', onChange);

  function set(rec) {
    const r = rec && rec.rule;
    if (rec && typeof rec.cron === 'string') {
      kind.value = 'cron';
      cron.value = rec.cron;
    } else if (r && KINDS.includes(r.kind)) {
      kind.value = r.kind;
      for (const box of days.querySelectorAll('input')) box.checked = Array.isArray(r.days) && r.days.includes(box.value);
      if (r.every) every.value = r.every;
      if (r.anchor) anchor.value = r.anchor;
      if (r.day) monthDay.value = r.day;
    }
    const list = r && Array.isArray(r.times) && r.times.length ? r.times : ['07:00:00'];
    times.replaceChildren(...list.map((x) => timeInput(String(x))));
    show();
  }

  // The recurrence as the API takes it.
  function value() {
    const k = kind.value;
    if (k === 'cron') return { cron: cron.value.trim() };
    const ts = [...times.querySelectorAll('input')].map((i) => i.value).filter(Boolean).map((v) => (v.length === 5 ? `${v}:00` : v));
    const rule = { kind: k, times: ts };
    const ds = [...days.querySelectorAll('input:checked')].map((i) => i.value);
    if (k === 'weekly') rule.days = ds;
    if (k === 'every_n_weeks') Object.assign(rule, { every: Number(every.value), anchor: anchor.value, days: ds });
    if (k === 'month_day') rule.day = Number(monthDay.value);
    return { rule };
  }

  function relabel() {
    for (const b of times.querySelectorAll('[data-rec-remove-time]')) b.setAttribute('aria-label', t('recRemoveTime'));
    setText(addTime, t('recAddTime'));
  }

  set({ rule: { kind: 'daily', times: ['07:00:00'] } });
  return { node, set, value, relabel };
}
