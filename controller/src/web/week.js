// The week view: what plays where, villages × days, for the county or one
// township, from /plan. A moved occurrence says by how much; a skipped one
// says why. Each cell opens that village's day.
import { getJSON, loadErrorText } from './api.js';
import { t } from './i18n.js';
import { setText } from './state.js';
import { addDays, countyDay, field, h, hm, isDay, movedText, reasonText, regionIndex, showError, today, weekdayOf } from './ui.js';

const DAYS = 7;

export function mountWeek(root, query) {
  const start = isDay(query.get('start')) ? query.get('start') : today();
  const region = /^\d+$/.test(query.get('region') || '') ? query.get('region') : '';
  const pg = { plan: null, idx: null };
  const go = (s, r) => {
    const q = new URLSearchParams({ start: s });
    if (r) q.set('region', r);
    location.hash = `#/week?${q}`;
  };

  const startInput = h('input', { type: 'date', value: start, dataset: { weekStart: '' } });
  const regionSelect = h('select', { dataset: { weekRegion: '' } });
  startInput.addEventListener('change', () => isDay(startInput.value) && go(startInput.value, regionSelect.value));
  regionSelect.addEventListener('change', () => go(start, regionSelect.value));
  const prev = h('button', { type: 'button', class: 'plain-btn', i18n: 'wkPrev', on: { click: () => go(addDays(start, -DAYS), region) } });
  const next = h('button', { type: 'button', class: 'plain-btn', i18n: 'wkNext', on: { click: () => go(addDays(start, DAYS), region) } });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const grid = h('div', { class: 'card table-wrap' });
  const note = h('p', { class: 'muted small', i18n: 'wkNote' });
  root.append(
    h('div', { class: 'pg-head' }, h('h2', { i18n: 'navWeek' }), field('wkStart', startInput, 'fld inline'),
      field('wkRegion', regionSelect, 'fld inline'), prev, next),
    error, note, grid);

  function paintRegions() {
    const idx = pg.idx;
    regionSelect.replaceChildren(h('option', { value: '' }, idx && idx.county ? `${idx.county.name}（${t('wkWholeCounty')}）` : t('wkWholeCounty')),
      ...(idx ? idx.townships : []).map((tw) => h('option', { value: String(tw.id) }, tw.name)));
    regionSelect.value = region;
  }

  function paint() {
    paintRegions();
    const p = pg.plan;
    if (!p) return;
    const days = Array.from({ length: DAYS }, (_, i) => addDays(start, i));
    const head = h('tr', {}, h('th', { i18n: 'wkVillage' }), ...days.map((d) =>
      h('th', { class: d === today() ? 'today' : '' }, `${t(`wd_${['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][weekdayOf(d)]}`)} ${d.slice(5)}`)));
    const villages = Array.isArray(p.villages) ? p.villages : [];
    const rows = villages.map((v) => {
      const cells = new Map(days.map((d) => [d, []]));
      for (const it of v.items || []) {
        const list = cells.get(countyDay(it.start_ms));
        if (list) list.push({ at: it.start_ms, node: itemNode(it) });
      }
      for (const s of v.skipped || []) {
        const list = cells.get(countyDay(s.nominal_start_ms));
        if (list) list.push({ at: s.nominal_start_ms, node: skippedNode(s) });
      }
      return h('tr', { dataset: { weekVillage: String(v.village_id) } },
        h('th', { scope: 'row' }, h('a', { href: `#/village/${v.village_id}/${start}` }, v.name)),
        ...days.map((d) => {
          const list = cells.get(d).sort((a, b) => a.at - b.at);
          return h('td', { class: 'wk-cell', dataset: { weekCell: `${v.village_id}/${d}` } },
            h('a', { class: 'wk-open', href: `#/village/${v.village_id}/${d}`, 'aria-label': t('wkOpenDay', v.name, d) }, '↗'),
            ...list.map((x) => x.node));
        }));
    });
    grid.replaceChildren(h('table', { class: 'grid week' }, h('thead', {}, head), h('tbody', {}, ...rows)));
    if (villages.length === 0) grid.append(h('p', { class: 'muted' }, t('wkNoVillages')));
  }

  function itemNode(it) {
    const moved = it.moved_by_ms > 0;
    return h('div', {
      class: `wk-item p-${it.priority}${moved ? ' moved' : ''}`,
      dataset: { planItem: String(it.schedule_id), start: String(it.start_ms) },
      title: (it.titles || []).join(' / '),
    }, h('span', { class: 'time' }, hm(it.start_ms)), ' ', h('span', { class: 'strong' }, it.name),
    moved ? h('span', { class: 'mark', dataset: { moved: '' } }, movedText(it.moved_by_ms)) : null);
  }

  function skippedNode(s) {
    return h('div', { class: 'wk-item skipped', dataset: { planSkipped: String(s.schedule_id) }, title: reasonText(s.reason) },
      h('span', { class: 'time' }, hm(s.nominal_start_ms)), ' ', h('s', {}, s.name), ' ',
      h('span', { class: 'mark' }, t('skippedBecause', reasonText(s.reason))));
  }

  async function load() {
    try {
      const q = new URLSearchParams({ start, days: String(DAYS) });
      if (region) q.set('region', region);
      const [regions, plan] = await Promise.all([getJSON('/regions'), getJSON(`/plan?${q}`)]);
      pg.idx = regionIndex(regions);
      pg.plan = plan;
      showError(error, '');
      paint();
    } catch (e) {
      showError(error, t('wkLoadFailed', loadErrorText(e)));
    }
    setText(note, t('wkNote'));
    root.dataset.loaded = 'true';
  }

  load();
  return { relabel: paint };
}
