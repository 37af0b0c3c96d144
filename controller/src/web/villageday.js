// One village's day: the plan beside what actually played (proof of play
// reported by its agents), one row per occurrence, with the outcome and
// whether the amplifier was confirmed on.
import { getJSON, loadErrorText } from './api.js';
import { t } from './i18n.js';
import { setText } from './state.js';
import { addDays, field, h, hms, isDay, movedText, reasonText, showError, today } from './ui.js';

const OUTCOMES = new Set(['completed', 'preempted', 'skipped', 'missed', 'failed']);

export function mountVillageDay(root, villageId, dayParam) {
  const day = isDay(dayParam) ? dayParam : today();
  const pg = { village: null, plan: null, plays: null };
  const go = (d) => {
    location.hash = `#/village/${villageId}/${d}`;
  };
  const title = h('h2', { dataset: { villageDayTitle: '' } });
  const dayInput = h('input', { type: 'date', value: day, dataset: { villageDay: '' } });
  dayInput.addEventListener('change', () => isDay(dayInput.value) && go(dayInput.value));
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const body = h('tbody');
  const empty = h('p', { class: 'muted', hidden: true, i18n: 'vdEmpty' });
  const legend = h('p', { class: 'legend-line' },
    ...[...OUTCOMES].map((o) => h('span', { class: `outcome o-${o}`, i18n: `out_${o}` })));
  root.append(
    h('div', { class: 'pg-head' }, title, field('vdDay', dayInput, 'fld inline'),
      h('button', { type: 'button', class: 'plain-btn', i18n: 'vdPrev', on: { click: () => go(addDays(day, -1)) } }),
      h('button', { type: 'button', class: 'plain-btn', i18n: 'vdNext', on: { click: () => go(addDays(day, 1)) } }),
      h('a', { href: '#/', class: 'plain-btn', i18n: 'vdBack' })),
    error, legend,
    h('div', { class: 'card table-wrap' }, h('table', { class: 'grid vday' },
      h('thead', {},
        h('tr', {}, h('th', { colSpan: 4, class: 'grp', i18n: 'vdPlanned' }), h('th', { colSpan: 4, class: 'grp', i18n: 'vdPlayed' })),
        h('tr', {}, ...['vdTime', 'vdSchedule', 'vdTitles', 'vdNote', 'vdStarted', 'vdEnded', 'vdOutcome', 'vdAmp'].map((k) => h('th', { i18n: k })))),
      body), empty));

  // One row per planned occurrence, matched with its play event by
  // schedule and start; events the plan does not know follow.
  function paint() {
    const v = pg.village;
    setText(title, t('vdTitle', v ? v.name : `#${villageId}`, day));
    const items = (pg.plan && pg.plan.items) || [];
    const skipped = (pg.plan && pg.plan.skipped) || [];
    const events = ((pg.plays && pg.plays.events) || []).slice();
    const take = (sid, times) => {
      const i = events.findIndex((e) => e.schedule_id === sid && times.includes(e.scheduled_ms));
      return i < 0 ? null : events.splice(i, 1)[0];
    };
    const rows = [];
    for (const it of items) {
      const ev = take(it.schedule_id, [it.start_ms, it.nominal_start_ms]);
      const moved = it.moved_by_ms > 0 ? movedText(it.moved_by_ms) : '';
      rows.push({
        at: it.start_ms,
        node: h('tr', { dataset: { planItem: String(it.schedule_id), start: String(it.start_ms) } },
          h('td', { class: 'num' }, `${hms(it.start_ms)}–${hms(it.end_ms)}`),
          h('td', {}, h('a', { href: `#/schedules/${it.schedule_id}` }, it.name)),
          h('td', {}, (it.titles || []).join(' / ')),
          h('td', { class: 'small' }, moved ? h('span', { class: 'mark-inline' }, moved) : null, h('span', { class: `prio p-${it.priority}` }, t(`prio_${it.priority}`)), ` · ${t('edVolume')} ${it.volume}`),
          ...eventCells(ev)),
      });
    }
    for (const s of skipped) {
      const ev = take(s.schedule_id, [s.nominal_start_ms]);
      rows.push({
        at: s.nominal_start_ms,
        node: h('tr', { class: 'skipped', dataset: { planSkipped: String(s.schedule_id) } },
          h('td', { class: 'num' }, hms(s.nominal_start_ms)), h('td', {}, h('s', {}, s.name)), h('td', {}, ''),
          h('td', { class: 'small' }, t('skippedBecause', reasonText(s.reason))), ...eventCells(ev)),
      });
    }
    for (const ev of events) {
      rows.push({
        at: ev.scheduled_ms,
        node: h('tr', { class: 'unplanned' }, h('td', { class: 'num' }, hms(ev.scheduled_ms)),
          h('td', {}, `#${ev.schedule_id}`), h('td', {}, ''), h('td', { class: 'small muted', i18n: 'vdNotInPlan' }), ...eventCells(ev)),
      });
    }
    rows.sort((a, b) => a.at - b.at);
    body.replaceChildren(...rows.map((r) => r.node));
    empty.hidden = rows.length > 0;
  }

  function eventCells(ev) {
    if (!ev) return [h('td', { colSpan: 4, class: 'muted small', dataset: { noPlay: '' } }, t('vdNoReport'))];
    const outcome = OUTCOMES.has(ev.outcome) ? ev.outcome : 'failed';
    const amp = ev.amplifier_confirmed === true;
    return [
      h('td', { class: 'num', dataset: { playEvent: ev.id, outcome } }, Number.isFinite(ev.started_ms) ? hms(ev.started_ms) : '—'),
      h('td', { class: 'num' }, Number.isFinite(ev.ended_ms) ? hms(ev.ended_ms) : '—'),
      h('td', {}, h('span', { class: `outcome o-${outcome}` }, t(`out_${outcome}`)), ev.reason ? h('div', { class: 'small muted' }, ev.reason) : null),
      h('td', { dataset: { ampConfirmed: String(amp) } }, amp ? t('vdAmpYes') : t('vdAmpNo')),
    ];
  }

  async function load() {
    try {
      const [regions, plan, plays] = await Promise.all([
        getJSON('/regions'),
        getJSON(`/villages/${villageId}/plan?day=${day}`),
        getJSON(`/villages/${villageId}/plays?day=${day}`),
      ]);
      pg.village = Array.isArray(regions) ? regions.find((r) => r && r.id === villageId) || null : null;
      pg.plan = plan;
      pg.plays = plays;
      showError(error, '');
    } catch (e) {
      showError(error, t('vdLoadFailed', loadErrorText(e)));
    }
    paint();
    root.dataset.loaded = 'true';
  }

  load();
  return { relabel: paint };
}
