// The live console (#/live): targets from the region tree, priority
// (paging or emergency), the source (the operator's microphone, the
// controller host's microphone or line-in, a library item or typed text
// played now), volume and title; a large start button that asks first,
// naming how many villages will be interrupted; while on the air, the
// session view (livesession.js), which for a live source tells the
// operator to wait while the amplifiers warm up and then to speak; the
// live and recent sessions below. #/live/<id> shows one session (live with
// its stop button, or its report). The server's refusals (409: a village,
// or the host input, is held by another session; 422: no agent to play it,
// or no host input configured) are shown with its message.
import { apiMessage, explained, getJSON, loadErrorText, sendJSON } from './api.js';
import { absTime } from './format.js';
import { t } from './i18n.js';
import { loadLibrary } from './library.js';
import { MicError, openMicrophone } from './mic.js';
import { endReasonText, sessionView } from './livesession.js';
import { setText, state } from './state.js';
import { onLiveEvent } from './sync.js';
import { targetsForm } from './targets.js';
import { debounce, field, h, regionIndex, showError } from './ui.js';

const SOURCES = ['microphone', 'host_input', 'library', 'text'];
const PRIORITIES = ['paging', 'emergency'];
// Sources someone speaks into as the session runs: the console cues them.
const LIVE_SOURCES = ['microphone', 'host_input'];
// The amplifier warm-up agents wait before a live session's audio. The API
// reports neither it nor anything it follows from (the start's answer and
// the session report carry the priority and started_at_ms only), so these
// are the agents' constants by priority, as LivePriority::warmup_ms in
// controller/src/live/mod.rs picks them: paging takes the scheduled
// items' PlaybackSettings::default().warmup_ms (protocol/src/state.rs),
// emergency EMERGENCY_WARMUP_MS (protocol/src/live.rs). Keep them in step.
const WARMUP_MS = { paging: 2000, emergency: 1000 };
// The time the controller allows its start commands to reach the agents
// before it sends recorded audio (COMMAND_MARGIN in
// controller/src/live/source.rs); the cue waits for it too.
const COMMAND_MARGIN_MS = 300;

export function mountLive(root, sessionId) {
  const pg = { idx: null, names: new Map(), lib: { categories: [], items: [] }, view: null, mic: null, left: false, sessions: null };
  const heading = h('h2', { i18n: sessionId ? 'lvSessionHeading' : 'lvHeading' });
  const head = h('div', { class: 'pg-head' }, heading, sessionId ? h('a', { href: '#/live', class: 'plain-btn', i18n: 'lvBack' }) : null);
  const loadError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const sessionBox = h('div', { class: 'lv-session-box' });
  root.append(head, loadError, h('p', { class: 'muted', i18n: 'loading' }));

  const unsubscribe = onLiveEvent((e) => {
    if (e === null) {
      if (pg.view) pg.view.reload();
      refreshList();
      return;
    }
    if (pg.view) pg.view.applyEvent(e);
    if (e.kind === 'session') refreshList();
  });

  async function load() {
    try {
      const [regions, lib] = await Promise.all([getJSON('/regions'), sessionId ? null : loadLibrary()]);
      pg.idx = regionIndex(regions);
      pg.names = new Map(pg.idx.villages.map((v) => [v.id, v.name]));
      if (lib) pg.lib = lib;
      if (pg.left) return;
      if (sessionId) {
        const report = await getJSON(`/live/${encodeURIComponent(sessionId)}`);
        root.replaceChildren(head, sessionBox);
        show(report, null);
      } else {
        build();
      }
    } catch (e) {
      root.replaceChildren(head, loadError);
      showError(loadError, t('lvLoadFailed', loadErrorText(e)));
    }
    root.dataset.loaded = 'true';
  }

  // ---- The form ------------------------------------------------------------

  let f = null;
  function build() {
    const title = h('input', { type: 'text', maxLength: 200, dataset: { liveTitle: '' } });
    const priority = h('div', { class: 'lv-seg', role: 'radiogroup' }, ...PRIORITIES.map((p) => h('label', { class: `lv-opt lv-opt-${p}` },
      h('input', { type: 'radio', name: 'lv-priority', value: p, checked: p === 'paging', dataset: { livePriority: p } }),
      h('span', { i18n: `lvPrio_${p}` }))));
    const source = h('div', { class: 'lv-seg', role: 'radiogroup' }, ...SOURCES.map((s) => h('label', { class: 'lv-opt' },
      h('input', { type: 'radio', name: 'lv-source', value: s, checked: s === 'microphone', dataset: { liveSource: s } }),
      h('span', { i18n: `lvSrc_${s}` }))));
    const item = h('select', { dataset: { liveItem: '' } }, ...pg.lib.items.map((i) => h('option', { value: i.id }, i.title)));
    const itemField = field('lvItem', item, 'fld wide');
    const noItems = h('p', { class: 'muted small', i18n: 'lvNoItems', hidden: pg.lib.items.length > 0 });
    const text = h('textarea', { rows: 3, maxLength: 2000, dataset: { liveText: '' } });
    const textField = field('lvText', text, 'fld wide');
    const micHint = h('p', { class: 'muted small wide', i18n: 'lvMicHint' });
    const hostHint = h('p', { class: 'muted small wide', i18n: 'lvHostInputHint', dataset: { liveHostHint: '' } });
    const volume = h('input', { type: 'range', min: 0, max: 100, value: 100, dataset: { liveVolume: '' } });
    const volumeText = h('output', { class: 'num' }, '100');
    volume.addEventListener('input', () => setText(volumeText, volume.value));
    const targets = targetsForm(pg.idx, () => paintForm());
    const reach = h('p', { class: 'lv-reach strong', dataset: { liveReach: '' } });
    const start = h('button', { type: 'submit', class: 'lv-start primary', dataset: { liveStart: '' } });
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { liveError: '' } });
    const form = h('form', { class: 'lv-form', novalidate: true, dataset: { liveForm: '' } },
      h('fieldset', { class: 'card form-grid' }, h('legend', { i18n: 'lvWhat' }),
        h('div', { class: 'fld wide' }, h('span', { class: 'fld-l', i18n: 'lvPriority' }), priority),
        h('div', { class: 'fld wide' }, h('span', { class: 'fld-l', i18n: 'lvSource' }), source),
        micHint, hostHint, itemField, noItems, textField,
        field('lvTitle', title, 'fld'),
        h('label', { class: 'fld' }, h('span', { class: 'fld-l', i18n: 'lvVolume' }), h('span', { class: 'row' }, volume, volumeText))),
      targets.node,
      h('div', { class: 'lv-actions' }, start, reach),
      error);
    form.addEventListener('change', paintForm);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      ask();
    });

    // The confirmation.
    const dlgTitle = h('h2', {});
    const dlgText = h('p', { dataset: { liveConfirmText: '' } });
    const ok = h('button', { type: 'button', class: 'danger', dataset: { liveConfirmOk: '' }, on: { click: () => { dialog.close(); go(); } } });
    const cancel = h('button', { type: 'button', class: 'plain-btn', i18n: 'cancel', dataset: { liveConfirmCancel: '' }, on: { click: () => dialog.close() } });
    const dialog = h('dialog', { class: 'confirm lv-confirm', dataset: { liveConfirm: '' } }, dlgTitle, dlgText, h('div', { class: 'confirm-actions' }, cancel, ok));

    const newButton = h('button', { type: 'button', class: 'plain-btn', i18n: 'lvNew', hidden: true, dataset: { liveNew: '' }, on: { click: newSession } });
    const list = h('div', { class: 'lv-list' });
    root.replaceChildren(head, form, h('div', { class: 'row' }, newButton), sessionBox, list, dialog);
    f = { title, priority, source, item, itemField, noItems, text, textField, micHint, hostHint, volume, targets, reach, start, error, form, dialog, dlgTitle, dlgText, ok, newButton, list, titleTouched: false };
    title.addEventListener('input', () => {
      f.titleTouched = title.value.trim() !== '';
    });
    paintForm();
    refreshList();
  }

  const chosen = (group) => {
    const c = group.querySelector('input:checked');
    return c ? c.value : null;
  };

  // The villages the targets reach, from the region tree.
  function reached() {
    const tg = f.targets.value();
    const idx = pg.idx;
    if (tg.county) return idx.villages.map((v) => v.id);
    const ids = new Set(tg.villages);
    for (const tw of tg.townships) for (const v of idx.villagesOf.get(tw) || []) ids.add(v.id);
    if (tg.tags.length) for (const v of idx.villages) if ((v.tags || []).some((x) => tg.tags.includes(String(x)))) ids.add(v.id);
    return [...ids];
  }

  function agentsIn(villages) {
    return villages.reduce((n, id) => n + ((state.agentsByVillage.get(id) || new Set()).size), 0);
  }

  function paintForm() {
    if (!f) return;
    const prio = chosen(f.priority);
    const src = chosen(f.source);
    f.form.classList.toggle('lv-emergency', prio === 'emergency');
    f.itemField.hidden = src !== 'library';
    f.noItems.hidden = src !== 'library' || pg.lib.items.length > 0;
    f.textField.hidden = src !== 'text';
    f.micHint.hidden = src !== 'microphone';
    f.hostHint.hidden = src !== 'host_input';
    if (!f.titleTouched) f.title.value = t(`lvDefaultTitle_${prio}`);
    f.start.className = `lv-start ${prio === 'emergency' ? 'danger' : 'primary'}`;
    setText(f.start, t(`lvStart_${prio}`));
    const villages = reached();
    setText(f.reach, villages.length ? t('lvReach', villages.length, agentsIn(villages)) : t('lvNoTargets'));
    f.start.disabled = !!(pg.view && !pg.view.ended) || pg.starting === true;
  }

  function ask() {
    showError(f.error, '');
    const prio = chosen(f.priority);
    const villages = reached();
    if (!villages.length) return showError(f.error, t('lvNoTargets'));
    const src = chosen(f.source);
    if (src === 'library' && !f.item.value) return showError(f.error, t('lvNoItems'));
    if (src === 'text' && !f.text.value.trim()) return showError(f.error, t('lvNeedText'));
    setText(f.dlgTitle, t(`lvConfirmTitle_${prio}`));
    setText(f.dlgText, t(`lvConfirmText_${prio}`, villages.length, agentsIn(villages), t(`lvSrc_${src}`)));
    setText(f.ok, t(`lvStart_${prio}`));
    f.ok.className = prio === 'emergency' ? 'danger' : 'primary';
    f.dialog.showModal();
  }

  // Starts the session the form describes (after the confirmation).
  async function go() {
    const prio = chosen(f.priority);
    const src = chosen(f.source);
    pg.starting = true;
    paintForm();
    showError(f.error, '');
    delete f.error.dataset.status;
    let mic = null;
    let view = null;
    let chunks = 0;
    try {
      if (src === 'microphone') {
        // Opened before the session starts: a refused microphone starts nothing.
        mic = await openMicrophone((peak) => {
          chunks += 1;
          if (view) view.setLevel(peak, mic ? mic.sent : chunks);
        });
      }
      const source = src === 'library' ? { type: 'library_item', item_id: Number(f.item.value) }
        : src === 'text' ? { type: 'text', text: f.text.value.trim() }
          : { type: src };
      const body = { title: f.title.value.trim() || t(`lvDefaultTitle_${prio}`), priority: prio, targets: f.targets.value(), source, volume: Number(f.volume.value) };
      const sentAt = Date.now();
      const res = await sendJSON('POST', '/live', body);
      const answeredAt = Date.now();
      if (pg.left) {
        if (mic) mic.close();
        return;
      }
      if (res.status !== 201 || !res.data) {
        if (mic) mic.close();
        f.error.dataset.status = String(res.status);
        // A refusal with a reason in words (the targets, the title, the
        // villages held by another session); the rest led by what it means.
        const words = explained(res, ['lvErr_', 'schErr_']);
        showError(f.error, words ? t('lvErrStart', words) : `${refusalLead(res, src)} ${apiMessage(res)}`);
        return;
      }
      const info = res.data;
      pg.mic = mic;
      // The report as far as the start knows it; the stream fills it in.
      view = show({
        session_id: info.session_id, title: info.title, priority: info.priority, villages: info.villages,
        started_at_ms: info.started_at_ms, ended_at_ms: null, agents: [], frames_sent: 0,
      }, mic, LIVE_SOURCES.includes(src) ? speakAt(info, sentAt, answeredAt) : null);
      view.reload();
      if (mic) mic.connect(info.microphone_path, (code, reason) => view.micClosed(code, reason));
      refreshList();
    } catch (e) {
      if (mic) mic.close();
      showError(f.error, e instanceof MicError ? t(`lvMic_${e.kind}`, e.message) : t('lvErrStart', loadErrorText(e)));
    } finally {
      pg.starting = false;
      paintForm();
    }
  }

  // Shows a session: the view replaces any earlier one. `cue` (a live
  // source started here) is when to tell the operator to speak.
  function show(report, mic, cue) {
    if (pg.view) pg.view.destroy();
    const view = sessionView(report, pg.names, {
      mic: !!mic,
      cue,
      onEnded: () => {
        closeMic();
        if (f) {
          f.newButton.hidden = false;
          paintForm();
        }
      },
      onStopped: closeMic,
    });
    pg.view = view;
    sessionBox.replaceChildren(view.node);
    if (f) {
      f.form.hidden = true;
      f.newButton.hidden = true;
    }
    return view;
  }

  function closeMic() {
    if (pg.mic) pg.mic.close();
    pg.mic = null;
  }

  function newSession() {
    if (pg.view && !pg.view.ended) return;
    if (pg.view) pg.view.destroy();
    pg.view = null;
    sessionBox.replaceChildren();
    f.form.hidden = false;
    f.newButton.hidden = true;
    paintForm();
    f.start.focus();
  }

  // ---- The live and recent sessions ----------------------------------------

  const refreshList = debounce(async () => {
    if (!f || pg.left) return;
    try {
      pg.sessions = await getJSON('/live');
    } catch (e) {
      f.list.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, t('lvLoadFailed', loadErrorText(e))));
      return;
    }
    paintList();
  }, 300);

  function paintList() {
    if (!f || !pg.sessions) return;
    const active = Array.isArray(pg.sessions.active) ? pg.sessions.active : [];
    const recent = Array.isArray(pg.sessions.recent) ? pg.sessions.recent : [];
    const row = (s, live) => h('tr', { dataset: { liveRow: s.session_id, live: String(live) } },
      h('td', { class: 'num' }, absTime(s.started_at_ms)),
      h('td', {}, h('span', { class: `prio p-${s.priority}` }, t(`prio_${s.priority}`)), h('a', { href: `#/live/${encodeURIComponent(s.session_id)}` }, s.title)),
      h('td', {}, sourceText(s.source)),
      h('td', { class: 'num' }, t('lvVillagesN', (s.villages || []).length)),
      h('td', { class: 'num' }, t('lvPlayedOf', (s.counts || {}).played || 0, (s.counts || {}).total || 0)),
      h('td', {}, live ? h('span', { class: 'lv-onair' }, t('lvOnAir')) : endReasonText(s.end_reason)));
    const table = (key, list, live) => h('section', { class: 'card table-wrap' }, h('h3', { i18n: key }),
      list.length ? h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, ...['lvColStarted', 'lvColTitle', 'lvColSource', 'lvColVillages', 'lvColPlayed', 'lvColEnd'].map((k) => h('th', { i18n: k })))),
        h('tbody', {}, ...list.map((s) => row(s, live)))) : h('p', { class: 'muted', i18n: live ? 'lvNoActive' : 'lvNoRecent' }));
    f.list.replaceChildren(table('lvActive', active, true), table('lvRecent', recent, false));
  }

  function sourceText(s) {
    const src = String(s || '');
    if (src.startsWith('library_item:')) {
      const id = Number(src.slice('library_item:'.length));
      const item = pg.lib.items.find((i) => i.id === id);
      return t('lvSrcItem', item ? item.title : `#${id}`);
    }
    if (src === 'microphone' || src === 'host_input' || src === 'text') return t(`lvSrc_${src}`);
    return t('lvSrc_audio');
  }

  load();
  return {
    relabel: () => {
      if (f) {
        f.targets.relabel();
        paintForm();
        paintList();
      }
      if (pg.view) pg.view.relabel();
    },
    // Leaving the page ends a microphone session: the microphone goes with it.
    leave: () => {
      pg.left = true;
      unsubscribe();
      refreshList.cancel();
      closeMic();
      if (pg.view) pg.view.destroy();
      if (f && f.dialog.open) f.dialog.close();
    },
  };
}

// The words before the controller's message when it refuses a start (the
// message itself names the session holding a village or the host input,
// or the setting to change). The host input's refusals are told by their
// stable codes; a 409 for it may be the input or a village, both held by
// another session.
function refusalLead(res, src) {
  const code = res.data && typeof res.data === 'object' ? res.data.error : null;
  if (code === 'host_input_not_configured') return t('lvErrNoHostInput');
  if (code === 'host_input_unavailable') return t('lvErrHostInput');
  if (res.status === 409) return src === 'host_input' ? t('lvErrHeldOrInput') : t('lvErrHeld');
  if (res.status === 422) return t('lvErrUnplayable');
  return t('lvErrStart');
}

// When the villages' loudspeakers are warm for a live source, on this
// browser's clock: the session's start plus the amplifier warm-up of its
// priority and the commands' way to the agents. The start is the
// controller's started_at_ms; this computer's clock need not agree with
// the controller's, so it is kept inside the request's round trip, when the
// session must have started.
function speakAt(info, sentAt, answeredAt) {
  const started = Number.isFinite(info.started_at_ms) ? info.started_at_ms : answeredAt;
  const warmupMs = WARMUP_MS[info.priority] || WARMUP_MS.paging;
  return { at: Math.min(Math.max(started, sentAt), answeredAt) + warmupMs + COMMAND_MARGIN_MS, warmupMs };
}
