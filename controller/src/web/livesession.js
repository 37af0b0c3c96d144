// One live session on the console: the targeted villages' states as their
// agents report them (the event stream's `live` events, applied to the
// session report from GET /live/{id}), the elapsed time, the microphone's
// level while this page sends it, for a live source started here the cue
// (wait while the amplifiers warm up, then speak), the stop button, and
// once it has ended the report: which villages played it, from when to
// when, frames lost.
import { apiMessage, getJSON, loadErrorText, sendJSON } from './api.js';
import { absTime } from './format.js';
import { t } from './i18n.js';
import { setAttr, setText } from './state.js';
import { clockDuration, h, hms, showError } from './ui.js';

// A village with several agents shows its most advanced agent.
const RANK = { playing: 7, receiving: 6, sent: 5, offline: 4, refused: 3, preempted: 2, ended: 1 };
// The meter's range, in dBFS.
const METER_FLOOR_DB = -60;

// The session view for `report` (a full SessionReport); `names` maps
// village ids to names. `opts.mic` marks a session whose microphone this
// page sends; `opts.cue` ({at, warmupMs}: when the loudspeakers are warm,
// on this browser's clock, and the warm-up) asks for the speak-now cue;
// `opts.onEnded()` is called once when it ends.
export function sessionView(report, names, opts) {
  const o = opts || {};
  const v = { model: report, loads: 0, buffered: [], ended: false, timer: null, cueTimer: null, peakDb: METER_FLOOR_DB };
  const title = h('h3', { class: 'lv-title' });
  const prio = h('span', { class: 'prio lv-prio' });
  const status = h('span', { class: 'lv-status', role: 'status' });
  const elapsed = h('span', { class: 'lv-elapsed num', dataset: { liveElapsed: '' } });
  const stop = h('button', { type: 'button', class: 'danger lv-stop', i18n: 'lvStop', dataset: { liveStop: '' }, on: { click: stopNow } });
  const stopError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { liveStopError: '' } });
  const bar = h('span', { class: 'lv-meter-bar' });
  const levelText = h('span', { class: 'lv-meter-db num' });
  const meter = h('div', { class: 'lv-meter', hidden: !o.mic, dataset: { micLevel: '', peakDb: String(METER_FLOOR_DB), chunks: '0' } },
    h('span', { class: 'fld-l', i18n: 'lvMicLevel' }), h('span', { class: 'lv-meter-track', 'aria-hidden': 'true' }, bar), levelText);
  const micNote = h('p', { class: 'muted small', i18n: 'lvMicNote', hidden: !o.mic });
  // Announced as it changes: the operator may be looking at the microphone.
  const cueMain = h('span', { class: 'lv-cue-main' });
  const cueSub = h('span', { class: 'lv-cue-sub' });
  const cue = h('p', { class: 'lv-cue', hidden: !o.cue, 'aria-live': 'assertive', 'aria-atomic': 'true', dataset: { liveCue: 'warming' } }, cueMain, cueSub);
  const counts = h('p', { class: 'lv-counts', 'aria-live': 'polite' });
  const grid = h('ul', { class: 'lv-grid', dataset: { liveGrid: '' } });
  const reportBox = h('section', { class: 'lv-report', hidden: true, dataset: { liveReport: '' } });
  const node = h('section', { class: 'card lv-session', dataset: { liveSession: report.session_id, ended: 'false' } },
    h('div', { class: 'lv-head' }, prio, title, status, h('span', { class: 'spacer' }), elapsed, stop),
    stopError, cue, meter, micNote, counts, grid, reportBox);
  const cells = new Map(); // village id -> {li, state, note}

  function over() {
    const m = v.model;
    return m.ended_at_ms !== null && m.ended_at_ms !== undefined;
  }

  function paint() {
    const m = v.model;
    const ended = over();
    node.dataset.ended = String(ended);
    node.classList.toggle('lv-emergency', m.priority === 'emergency');
    setText(title, m.title || '');
    prio.className = `prio lv-prio p-${m.priority}`;
    setText(prio, t(`prio_${m.priority}`));
    setText(status, ended ? t('lvEndedAt', hms(m.ended_at_ms), endReasonText(m.end_reason)) : t('lvOnAir'));
    stop.hidden = ended;
    if (ended) meter.hidden = true;
    if (ended) micNote.hidden = true;
    paintElapsed();
    paintCue();
    paintGrid();
    if (ended) paintReport();
    if (ended && !v.ended) {
      v.ended = true;
      clearInterval(v.timer);
      clearTimeout(v.cueTimer);
      if (o.onEnded) o.onEnded();
    }
  }

  function paintElapsed() {
    const m = v.model;
    const to = m.ended_at_ms || Date.now();
    setText(elapsed, t('lvElapsed', clockDuration(Math.max(0, to - m.started_at_ms))));
  }

  // Waiting for the warm-up, then "speak now" until the session ends.
  function paintCue() {
    if (!o.cue) return;
    const speak = Date.now() >= o.cue.at;
    cue.hidden = over();
    cue.dataset.liveCue = speak ? 'speak' : 'warming';
    setText(cueMain, t(speak ? 'lvCueSpeak' : 'lvCueWarming'));
    setText(cueSub, speak ? t('lvCueSpeakNote') : t('lvCueWarmingNote', Math.ceil(o.cue.warmupMs / 1000)));
  }

  // Repaints the cue when the warm-up has passed (a timer may fire a
  // little early: it tries again).
  function cueAtWarm() {
    if (v.ended) return;
    paintCue();
    if (cue.dataset.liveCue !== 'speak') v.cueTimer = setTimeout(cueAtWarm, Math.max(10, o.cue.at - Date.now()));
  }

  function villageIds() {
    const ids = Array.isArray(v.model.villages) ? [...v.model.villages] : [];
    for (const a of agents()) if (!ids.includes(a.village_id)) ids.push(a.village_id);
    return ids;
  }

  function agents() {
    return Array.isArray(v.model.agents) ? v.model.agents : [];
  }

  function paintGrid() {
    const byVillage = new Map();
    for (const a of agents()) {
      if (!byVillage.has(a.village_id)) byVillage.set(a.village_id, []);
      byVillage.get(a.village_id).push(a);
    }
    const tally = {};
    for (const id of villageIds()) {
      let c = cells.get(id);
      if (!c) {
        c = { state: h('span', { class: 'lv-st' }), note: h('span', { class: 'lv-note' }) };
        c.li = h('li', { class: 'lv-cell', dataset: { liveVillage: String(id) } }, h('span', { class: 'lv-name' }, names.get(id) || `#${id}`), c.state, c.note);
        cells.set(id, c);
        grid.append(c.li);
      }
      const list = byVillage.get(id) || [];
      const best = list.reduce((b, a) => (!b || (RANK[a.state] || 0) > (RANK[b.state] || 0) ? a : b), null);
      const st = best ? best.state : 'none';
      tally[st] = (tally[st] || 0) + 1;
      const amp = list.some((a) => (a.state === 'playing' || a.state === 'receiving') && a.amplifier_on === true);
      c.li.dataset.state = st;
      setAttr(c.li, 'data-amp', best && (st === 'playing' || st === 'receiving') ? (amp ? 'on' : 'waiting') : '');
      setText(c.state, t(`lvSt_${st}`));
      const notes = [];
      if (st === 'playing' || st === 'receiving') notes.push(amp ? t('lvAmpOn') : t('lvAmpWaiting'));
      for (const a of list) {
        if (a.state === 'refused') notes.push(a.message || a.reason || '');
        if (a.state === 'preempted') notes.push(t('lvPreemptedBy', a.by || ''));
      }
      if (list.length > 1) notes.push(t('lvAgentsN', list.length));
      setText(c.note, notes.filter(Boolean).join(' · '));
      c.li.title = list.map((a) => `${a.agent_id}: ${t(`lvSt_${a.state}`)}`).join('\n');
    }
    const order = ['playing', 'receiving', 'sent', 'offline', 'refused', 'preempted', 'ended', 'none'];
    setText(counts, order.filter((s) => tally[s]).map((s) => `${t(`lvSt_${s}`)} ${tally[s]}`).join(' · '));
  }

  function paintReport() {
    const m = v.model;
    const played = new Set(agents().filter((a) => a.playing_from_ms !== null && a.playing_from_ms !== undefined).map((a) => a.village_id));
    reportBox.dataset.played = String(played.size);
    reportBox.dataset.villages = String(villageIds().length);
    const dash = (x) => (x === null || x === undefined ? '—' : String(x));
    const rows = [...agents()].sort((a, b) => String(names.get(a.village_id) || '').localeCompare(String(names.get(b.village_id) || '')) || a.agent_id.localeCompare(b.agent_id));
    reportBox.replaceChildren(
      h('h4', { i18n: 'lvReport' }),
      h('p', { class: 'strong' }, t('lvReportSummary', played.size, villageIds().length, absTime(m.started_at_ms), clockDuration(m.ended_at_ms - m.started_at_ms), m.frames_sent)),
      h('div', { class: 'table-wrap' }, h('table', { class: 'grid lv-report-table' },
        h('thead', {}, h('tr', {}, ...['lvColVillage', 'lvColAgent', 'lvColState', 'lvColFrom', 'lvColTo', 'lvColReceived', 'lvColLost', 'lvColDropped'].map((k) => h('th', { i18n: k })))),
        h('tbody', {}, ...rows.map((a) => {
          const didPlay = a.playing_from_ms !== null && a.playing_from_ms !== undefined;
          return h('tr', { dataset: { reportAgent: a.agent_id, reportVillage: String(a.village_id), played: String(didPlay) } },
            h('td', { class: 'strong' }, names.get(a.village_id) || `#${a.village_id}`),
            h('td', { class: 'mono small' }, a.agent_id),
            h('td', {}, agentStateText(a)),
            h('td', { class: 'num' }, didPlay ? hms(a.playing_from_ms) : '—'),
            h('td', { class: 'num' }, a.playing_to_ms ? hms(a.playing_to_ms) : '—'),
            h('td', { class: 'num' }, dash(a.frames_received)),
            h('td', { class: 'num', dataset: { framesLost: dash(a.frames_lost) } }, dash(a.frames_lost)),
            h('td', { class: 'num' }, dash(a.frames_dropped)));
        })))),
      h('p', { class: 'muted small', i18n: 'lvReportNote' }));
    reportBox.hidden = false;
  }

  function agentStateText(a) {
    if (a.state === 'refused') return `${t('lvSt_refused')}: ${a.message || a.reason || ''}`;
    if (a.state === 'preempted') return t('lvPreemptedBy', a.by || '');
    if (a.state === 'ended') return `${t('lvSt_ended')}: ${endReasonText(a.reason)}`;
    return t(`lvSt_${a.state}`);
  }

  // An event from the stream: `{kind: 'session', session}` or
  // `{kind: 'agent', session_id, agent}`.
  function applyEvent(e) {
    if (!e || typeof e !== 'object') return;
    const id = e.kind === 'session' ? e.session && e.session.session_id : e.session_id;
    if (id !== v.model.session_id) return;
    if (v.loads > 0) v.buffered.push(e);
    absorb(e);
    paint();
  }

  function absorb(e) {
    if (e.kind === 'session') {
      const { agents: _ignored, ...summary } = e.session;
      Object.assign(v.model, summary);
    } else if (e.kind === 'agent' && e.agent && typeof e.agent.agent_id === 'string') {
      const list = agents();
      const i = list.findIndex((a) => a.agent_id === e.agent.agent_id);
      if (i >= 0) list[i] = e.agent;
      else v.model.agents = [...list, e.agent];
    }
  }

  // Takes the report `fetchReport()` answers as the model. Events heard
  // while it is on its way are applied again on top, since the answer may
  // be older than they are (the stream and the request race).
  async function snapshot(fetchReport) {
    const from = v.buffered.length;
    v.loads += 1;
    let answer = null;
    try {
      answer = await fetchReport();
      if (answer && typeof answer === 'object' && answer.session_id === v.model.session_id) {
        v.model = answer;
        for (const e of v.buffered.slice(from)) absorb(e);
      }
    } finally {
      v.loads -= 1;
      if (v.loads === 0) v.buffered = [];
      paint();
    }
    return answer;
  }

  // Reloads the report (after a gap in the stream, or at the start).
  async function reload() {
    try {
      await snapshot(() => getJSON(`/live/${encodeURIComponent(v.model.session_id)}`));
    } catch (_) {
      /* the stream keeps the view current; the next reload tries again */
    }
  }

  async function stopNow() {
    stop.disabled = true;
    showError(stopError, '');
    try {
      let failed = null;
      await snapshot(async () => {
        const res = await sendJSON('POST', `/live/${encodeURIComponent(v.model.session_id)}/stop`, {});
        if (res.status === 200 && res.data) return res.data;
        failed = res;
        return null;
      });
      if (failed) showError(stopError, t('lvStopFailed', apiMessage(failed)));
    } catch (e) {
      showError(stopError, t('lvStopFailed', loadErrorText(e)));
    }
    stop.disabled = false;
    if (o.onStopped) o.onStopped();
  }

  // The microphone's level, linear peak 0–1, for the meter.
  function setLevel(peak, chunks) {
    const db = peak > 0 ? Math.max(METER_FLOOR_DB, 20 * Math.log10(peak)) : METER_FLOOR_DB;
    // Falls back slowly so speech reads as a steady bar.
    v.peakDb = Math.max(db, v.peakDb - 1.5);
    bar.style.width = `${Math.round(((v.peakDb - METER_FLOOR_DB) / -METER_FLOOR_DB) * 100)}%`;
    bar.classList.toggle('hot', v.peakDb > -3);
    meter.dataset.peakDb = String(Math.round(db));
    meter.dataset.chunks = String(chunks);
    setText(levelText, `${Math.round(v.peakDb)} dBFS`);
  }

  // The microphone socket closed without the operator stopping.
  function micClosed(code, reason) {
    if (!v.ended) showError(stopError, t('lvMicClosed', reason || String(code)));
  }

  v.timer = setInterval(paintElapsed, 1000);
  paint();
  if (o.cue) cueAtWarm();
  return {
    node,
    applyEvent,
    reload,
    setLevel,
    micClosed,
    relabel: () => {
      cells.clear();
      grid.replaceChildren();
      paint();
    },
    destroy: () => {
      clearInterval(v.timer);
      clearTimeout(v.cueTimer);
    },
    get ended() {
      return v.ended;
    },
  };
}

// Why a session or an agent's part in it ended, in words.
export function endReasonText(reason) {
  // An agent reports the controller's reason behind "stopped: ".
  const r = String(reason || '').replace(/^stopped: /, '');
  const known = {
    'stopped by the operator': 'lvWhyOperator',
    'played out': 'lvWhyPlayedOut',
    'microphone disconnected': 'lvWhyMicGone',
    'max duration': 'lvWhyMaxDuration',
  };
  for (const [text, key] of Object.entries(known)) if (r.startsWith(text)) return t(key);
  if (r.startsWith('preempted by')) return t('lvWhyPreempted');
  return r || '—';
}
