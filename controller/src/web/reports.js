// The service report of a month (#/reports?month=YYYY-MM&township=ID):
// headline figures, a daily chart, the townships and, for one township,
// its villages; links to the CSV and the printable monthly page with the
// same query. A township account sees its own township only (the server
// narrows the report; the page drops the township choice).
//
// Figures the server adds later (hours offline) are shown when the JSON
// carries them, so the page never needs to know in advance.
import { getJSON, loadErrorText } from './api.js';
import { t } from './i18n.js';
import { session } from './session.js';
import { state } from './state.js';
import { countyDay, field, h, regionIndex, showError } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';
// The outcomes stacked in the daily chart, bottom to top.
const STACK = ['played', 'preempted', 'missed', 'failed'];

// The column set of both tables: a key, its heading and how to read it.
const COLUMNS = [
  { key: 'scheduled', head: 'rpColScheduled', value: (f) => f.plays.scheduled },
  { key: 'played', head: 'rpColPlayed', value: (f) => f.plays.played },
  { key: 'preempted', head: 'rpColPreempted', value: (f) => f.plays.preempted },
  { key: 'missed', head: 'rpColMissed', value: (f) => f.plays.missed },
  { key: 'failed', head: 'rpColFailed', value: (f) => f.plays.failed },
  { key: 'amplifier', head: 'rpColAmplifier', value: (f) => f.plays.amplifier_unconfirmed },
  { key: 'offline', head: 'rpColOffline', value: (f) => offlineHours(f), optional: true },
  { key: 'live', head: 'rpColLive', value: (f) => f.live.reached, text: (f) => `${f.live.reached} / ${f.live.targeted}` },
  { key: 'compliance', head: 'rpColCompliance', value: (f) => f.plays.compliance_pct, text: (f) => pctText(f.plays.compliance_pct) },
];

export function mountReports(root, query) {
  const own = session.user && Number.isInteger(session.user.region_id) ? session.user.region_id : null;
  const month = isMonth(query.get('month')) ? query.get('month') : thisMonth();
  const asked = /^\d+$/.test(query.get('township') || '') ? Number(query.get('township')) : null;
  const township = own !== null ? own : asked;
  const pg = { report: null, idx: null, error: null, sort: { key: 'code', dir: 1 } };
  const go = (m, tw) => {
    const q = new URLSearchParams({ month: m });
    if (tw !== null && tw !== '' && own === null) q.set('township', String(tw));
    location.hash = `#/reports?${q}`;
  };

  const monthInput = h('input', { type: 'month', value: month, max: thisMonth(), dataset: { reportMonth: '' } });
  monthInput.addEventListener('change', () => isMonth(monthInput.value) && go(monthInput.value, township));
  const twSelect = h('select', { dataset: { reportTownship: '' } });
  twSelect.addEventListener('change', () => go(month, twSelect.value));
  const twField = field('rpTownship', twSelect, 'fld inline');
  twField.hidden = own !== null;
  const prev = h('button', { type: 'button', class: 'plain-btn', i18n: 'rpPrev', on: { click: () => go(addMonths(month, -1), township) } });
  const next = h('button', {
    type: 'button', class: 'plain-btn', i18n: 'rpNext', disabled: month >= thisMonth(),
    on: { click: () => go(addMonths(month, 1), township) },
  });
  const csv = h('a', { class: 'plain-btn', i18n: 'rpCsv', dataset: { reportCsv: '' }, download: '' });
  const print = h('a', { class: 'plain-btn', i18n: 'rpPrint', target: '_blank', rel: 'noopener', dataset: { reportPrint: '' } });
  const title = h('h2', { dataset: { reportTitle: '' } });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const empty = h('p', { class: 'card rp-empty', hidden: true, dataset: { reportEmpty: '' } });
  const figures = h('div', { class: 'rp-figures', dataset: { reportFigures: '' } });
  const chart = h('div', { class: 'card rp-chart', dataset: { reportChart: '' } });
  const twTable = h('div', { class: 'card table-wrap', dataset: { reportTownships: '' } });
  const vTable = h('div', { class: 'card table-wrap', hidden: true, dataset: { reportVillages: '' } });
  const note = h('p', { class: 'muted small', i18n: 'rpNote' });
  root.append(
    h('div', { class: 'pg-head' }, title, field('rpMonth', monthInput, 'fld inline'), prev, next, twField,
      h('span', { class: 'spacer' }), h('span', { class: 'rp-links' }, csv, print)),
    error, empty, figures, chart, twTable, vTable, note);

  function query2(lang) {
    const q = new URLSearchParams({ month });
    if (township !== null) q.set('township', String(township));
    if (lang) q.set('lang', state.lang);
    return q.toString();
  }

  function paint() {
    const r = pg.report;
    const twName = (id) => {
      const tw = pg.idx && pg.idx.byId.get(id);
      return tw ? tw.name : r && r.townships.length === 1 ? r.townships[0].name : `#${id}`;
    };
    title.textContent = township !== null ? t('rpTitleTownship', twName(township), month) : t('rpTitleCounty', month);
    csv.href = `/api/v1/reports/villages.csv?${query2(true)}`;
    print.href = `/api/v1/reports/monthly.html?${query2(true)}`;
    paintTownships();
    showError(error, pg.error ? t('rpLoadFailed', loadErrorText(pg.error)) : '');
    if (!r) {
      for (const n of [empty, figures, chart, twTable, vTable]) n.hidden = true;
      return;
    }
    const tot = r.total;
    const nothing = tot.plays.scheduled === 0 && tot.plays.skipped === 0 && tot.live.targeted === 0;
    empty.textContent = t('rpEmpty');
    empty.hidden = !nothing;
    figures.hidden = nothing;
    chart.hidden = nothing;
    figures.replaceChildren(...headline(tot));
    chart.replaceChildren(h('h3', { i18n: 'rpDaily' }), dailyChart(r.days || [], tot.daily || []), chartLegend());
    const hasOffline = r.townships.some((tw) => offlineHours(tw) !== null) || offlineHours(tot) !== null;
    const cols = COLUMNS.filter((c) => !c.optional || hasOffline);
    twTable.hidden = nothing;
    twTable.replaceChildren(h('h3', { class: 'rp-th', i18n: 'rpByTownship' }), table(cols, r.townships.map((tw) => ({
      id: tw.id, name: tw.name, code: tw.code, f: tw, reporting: `${tw.villages_reporting} / ${tw.village_count}`,
    })), 'township'));
    const villages = township !== null && r.townships.length ? r.townships[0].villageList : null;
    vTable.hidden = nothing || !villages;
    if (villages) {
      vTable.replaceChildren(h('h3', { class: 'rp-th', i18n: 'rpByVillage' }), table(cols, villages.map((v) => ({
        id: v.id, name: v.name, code: v.code, f: v, reporting: null,
      })), 'village'));
    }
  }

  function paintTownships() {
    if (own !== null) return;
    const idx = pg.idx;
    twSelect.replaceChildren(h('option', { value: '' }, t('rpWholeCounty')),
      ...(idx ? idx.townships : []).map((tw) => h('option', { value: String(tw.id) }, tw.name)));
    twSelect.value = township === null ? '' : String(township);
  }

  function headline(tot) {
    const p = tot.plays;
    const card = (key, value, label, sub, tone) => h('div', { class: `rp-fig ${tone || ''}`, dataset: { figure: key, value: String(value) } },
      h('div', { class: 'rp-fig-v' }, key === 'compliance' ? pctText(value) : String(value)),
      h('div', { class: 'rp-fig-l' }, t(label)), sub ? h('div', { class: 'rp-fig-s small muted' }, sub) : null);
    const list = [
      card('compliance', p.compliance_pct === null ? '' : p.compliance_pct, 'rpFigCompliance',
        t('rpFigComplianceSub', tot.villages_reporting, tot.village_count), complianceTone(p.compliance_pct)),
      card('played', p.played, 'rpFigPlayed', t('rpFigPlayedSub', p.played, p.scheduled)),
      card('missed', p.missed, 'rpFigMissed', p.preempted ? t('rpFigPreemptedSub', p.preempted) : null, p.missed ? 'warn' : ''),
      card('failed', p.failed, 'rpFigFailed', null, p.failed ? 'bad' : ''),
      card('amplifier', p.amplifier_unconfirmed, 'rpFigAmplifier', null, p.amplifier_unconfirmed ? 'warn' : ''),
    ];
    const off = offlineHours(tot);
    if (off !== null) list.push(card('offline', off, 'rpFigOffline', null, off > 0 ? 'warn' : ''));
    list.push(card('live', tot.live.reached, 'rpFigLive', t('rpFigLiveSub', tot.live.reached, tot.live.targeted)));
    return list;
  }

  // A table of townships or villages; villages sort by any figure.
  function table(cols, rows, kind) {
    const sortable = kind === 'village';
    const s = pg.sort;
    if (sortable) {
      const col = cols.find((c) => c.key === s.key);
      rows.sort((a, b) => {
        if (!col) return s.dir * String(a.code).localeCompare(String(b.code));
        const va = col.value(a.f);
        const vb = col.value(b.f);
        // Villages without a figure (nothing scheduled) go last either way.
        if (va === null || va === undefined) return vb === null || vb === undefined ? 0 : 1;
        if (vb === null || vb === undefined) return -1;
        return s.dir * (va - vb) || String(a.code).localeCompare(String(b.code));
      });
    }
    const head = (key, label, cls) => {
      const th = h('th', { class: cls || '', dataset: { col: key } });
      if (!sortable) {
        th.textContent = t(label);
        return th;
      }
      const on = s.key === key;
      th.setAttribute('aria-sort', on ? (s.dir > 0 ? 'ascending' : 'descending') : 'none');
      th.append(h('button', {
        type: 'button', class: 'rp-sort', dataset: { sort: key, sorted: on ? (s.dir > 0 ? 'asc' : 'desc') : '' },
        on: { click: () => sortBy(key) },
      }, t(label), on ? (s.dir > 0 ? ' ▲' : ' ▼') : ''));
      return th;
    };
    const first = kind === 'village' ? [head('code', 'rpColVillage'), head('code2', 'rpColCode')]
      : [head('name', 'rpColTownship'), head('reporting', 'rpColReporting', 'num')];
    const body = rows.map((row) => {
      const f = row.f;
      const nameCell = kind === 'township' && own === null
        ? h('td', {}, h('a', { href: `#/reports?${new URLSearchParams({ month, township: String(row.id) })}` }, row.name))
        : h('td', {}, row.name);
      const second = kind === 'village' ? h('td', { class: 'mono small' }, row.code) : h('td', { class: 'num' }, row.reporting);
      const ds = kind === 'village' ? { reportVillage: String(row.id) } : { reportTownshipRow: String(row.id) };
      ds.compliance = f.plays.compliance_pct === null ? '' : String(f.plays.compliance_pct);
      ds.played = String(f.plays.played);
      ds.scheduled = String(f.plays.scheduled);
      return h('tr', { dataset: ds }, nameCell, second, ...cols.map((c) => {
        const v = c.value(f);
        const text = c.text ? c.text(f) : v === null || v === undefined ? '—' : String(v);
        const tone = c.key === 'compliance' ? complianceTone(f.plays.compliance_pct) : '';
        return h('td', { class: `num ${tone}`, dataset: { col: c.key } }, text);
      }));
    });
    return h('table', { class: 'grid rp-table' },
      h('thead', {}, h('tr', {}, ...first, ...cols.map((c) => head(c.key, c.head, 'num')))),
      h('tbody', {}, ...body));
  }

  function sortBy(key) {
    const k = key === 'code2' ? 'code' : key;
    // Compliance starts worst first: that is what an operator looks for.
    pg.sort = pg.sort.key === k ? { key: k, dir: -pg.sort.dir } : { key: k, dir: k === 'code' || k === 'compliance' ? 1 : -1 };
    paint();
  }

  async function load() {
    const q = new URLSearchParams({ month });
    if (township !== null && own === null) q.set('township', String(township));
    try {
      const [regions, report] = await Promise.all([
        own === null ? getJSON('/regions') : Promise.resolve(null),
        getJSON(`/reports?${q}`),
      ]);
      if (regions) pg.idx = regionIndex(regions);
      pg.report = normalise(report);
      pg.error = null;
    } catch (e) {
      pg.error = e;
      pg.report = null;
    }
    paint();
    root.dataset.loaded = 'true';
  }

  paint();
  load();
  return { relabel: paint };
}

// ---- Helpers -------------------------------------------------------------

function isMonth(s) {
  return typeof s === 'string' && /^\d{4}-(0[1-9]|1[0-2])$/.test(s);
}

// This month in the county's time zone.
function thisMonth() {
  return countyDay(Date.now()).slice(0, 7);
}

function addMonths(month, n) {
  const [y, m] = month.split('-').map(Number);
  const d = new Date(Date.UTC(y, m - 1 + n, 1));
  return d.toISOString().slice(0, 7);
}

function pctText(pct) {
  if (pct === null || pct === undefined || pct === '' || !Number.isFinite(Number(pct))) return '—';
  const v = Number(pct);
  return `${v === 100 || v === 0 ? v.toFixed(0) : v.toFixed(1)}%`;
}

function complianceTone(pct) {
  if (pct === null || pct === undefined) return '';
  if (pct >= 95) return 'good';
  if (pct >= 80) return 'warn';
  return 'bad';
}

// Hours offline over the period, when the report carries them (under
// whichever of these names the server chose), else null.
export function offlineHours(f) {
  if (!f || typeof f !== 'object') return null;
  const hours = [f.hours_offline, f.offline_hours, f.plays && f.plays.hours_offline].find((v) => Number.isFinite(v));
  if (hours !== undefined) return Math.round(hours * 10) / 10;
  const ms = [f.offline_ms, f.ms_offline].find((v) => Number.isFinite(v));
  if (ms !== undefined) return Math.round(ms / 360000) / 10;
  const secs = [f.offline_secs, f.seconds_offline].find((v) => Number.isFinite(v));
  if (secs !== undefined) return Math.round(secs / 360) / 10;
  return null;
}

// Fills in what an older or newer server may leave out, so painting never
// trips over a missing object.
function normalise(r) {
  const fig = (f) => {
    const out = f && typeof f === 'object' ? f : {};
    out.plays = out.plays && typeof out.plays === 'object' ? out.plays : {};
    for (const k of ['scheduled', 'played', 'preempted', 'missed', 'failed', 'skipped', 'amplifier_unconfirmed']) {
      if (!Number.isFinite(out.plays[k])) out.plays[k] = 0;
    }
    if (!Number.isFinite(out.plays.compliance_pct)) out.plays.compliance_pct = null;
    out.live = out.live && typeof out.live === 'object' ? out.live : {};
    for (const k of ['targeted', 'reached']) if (!Number.isFinite(out.live[k])) out.live[k] = 0;
    for (const k of ['village_count', 'villages_reporting']) if (!Number.isFinite(out[k])) out[k] = 0;
    if (!Array.isArray(out.daily)) out.daily = [];
    return out;
  };
  const report = r && typeof r === 'object' ? r : {};
  report.total = fig(report.total);
  // A township: its figures (`village_count` among them) and its villages.
  report.townships = (Array.isArray(report.townships) ? report.townships : []).map((tw) => {
    const raw = tw && typeof tw === 'object' ? tw.villages : null;
    const f = fig(tw);
    f.villageList = Array.isArray(raw) ? raw.map(fig) : [];
    return f;
  });
  return report;
}

// ---- The daily chart -----------------------------------------------------

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) if (c) e.append(c);
  return e;
}

// Stacked bars per day: played, preempted, missed, failed.
function dailyChart(days, daily) {
  const W = 900;
  const H = 220;
  const pad = { l: 44, r: 8, t: 10, b: 26 };
  const n = Math.max(days.length, 1);
  const max = Math.max(1, ...daily.map((d) => STACK.reduce((s, k) => s + (Number(d[k]) || 0), 0)));
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / top);
  const bw = (W - pad.l - pad.r) / n;
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'rp-svg', role: 'img', 'aria-label': t('rpDailyAria'), 'data-report-bars': '',
  });
  for (let v = 0; v <= top; v += step) {
    root.append(svg('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'rp-gridline' }));
    const label = svg('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'rp-axis' });
    label.textContent = String(v);
    root.append(label);
  }
  days.forEach((day, i) => {
    const d = daily[i] || {};
    const g = svg('g', { 'data-day': day, 'data-played': Number(d.played) || 0 });
    let acc = 0;
    for (const k of STACK) {
      const v = Number(d[k]) || 0;
      if (!v) continue;
      const r = svg('rect', {
        x: pad.l + i * bw + bw * 0.15, width: Math.max(1, bw * 0.7), y: y(acc + v), height: Math.max(0.5, y(acc) - y(acc + v)), class: `rp-bar b-${k}`,
      });
      const tip = svg('title');
      tip.textContent = `${day} ${t(`rpSeries_${k}`)} ${v}`;
      r.append(tip);
      g.append(r);
      acc += v;
    }
    root.append(g);
    const dom = Number(day.slice(8));
    if (n <= 16 || dom === 1 || dom % 5 === 0) {
      const label = svg('text', { x: pad.l + i * bw + bw / 2, y: H - 8, 'text-anchor': 'middle', class: 'rp-axis' });
      label.textContent = String(dom);
      root.append(label);
    }
  });
  return root;
}

function chartLegend() {
  return h('p', { class: 'legend-line rp-legend' },
    ...STACK.map((k) => h('span', { class: `rp-key b-${k}` }, t(`rpSeries_${k}`))));
}

function niceStep(max) {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return Math.max(1, m * mag);
  return Math.max(1, 10 * mag);
}
