// The village panel: one village at a time, with its facts and its agents
// (from state.agents, so the event stream keeps them live). Enrolment codes
// are in enrol.js, removing an agent in remove.js.
import { paintEnrol } from './enrol.js';
import { absTime, formatBytes, formatOffset, parseTime, str, timeAndAgo } from './format.js';
import { t, tagLabel } from './i18n.js';
import { AMP_STATES, computeInfo, villageAgents } from './model.js';
import { $, el, panel, setAttr, setText, state } from './state.js';
import { countyDay } from './ui.js';

const OFFSET_WARN_MS = 1000;

function openPanel(villageId, opener) {
  const v = state.regions.get(villageId);
  if (!v) return;
  const switching = panel.villageId !== villageId;
  if (panel.villageId !== null && switching) markCard(panel.villageId, false);
  panel.villageId = villageId;
  panel.opener = opener || null;
  const node = $('village-panel');
  node.dataset.villageCode = String(v.code);
  if (switching) {
    panel.rows.clear();
    $('vp-agents').replaceChildren();
    setText($('enrol-error'), '');
    $('enrol-error').hidden = true;
    setText($('copy-status'), '');
  }
  markCard(villageId, true);
  document.body.classList.add('panel-open');
  node.hidden = false;
  paintPanel();
  $('vp-name').focus({ preventScroll: true });
  const c = state.cards.get(villageId);
  if (c) c.li.scrollIntoView({ block: 'nearest' });
}

export function closePanel(restoreFocus) {
  if (panel.villageId === null) return;
  markCard(panel.villageId, false);
  // The card may have been rebuilt since (a directory reload).
  const card = state.cards.get(panel.villageId);
  const opener = panel.opener && panel.opener.isConnected ? panel.opener : card ? card.li : null;
  panel.villageId = null;
  panel.opener = null;
  panel.rows.clear();
  $('vp-agents').replaceChildren();
  const node = $('village-panel');
  node.hidden = true;
  delete node.dataset.villageCode;
  document.body.classList.remove('panel-open');
  if (restoreFocus && opener && opener.isConnected) opener.focus({ preventScroll: true });
}

function markCard(villageId, on) {
  const c = state.cards.get(villageId);
  if (!c) return;
  if (on) c.li.dataset.selected = 'true';
  else delete c.li.dataset.selected;
}

// Paints everything in the panel from the current state.
export function paintPanel() {
  const vid = panel.villageId;
  if (vid === null) return;
  const v = state.regions.get(vid);
  if (!v) {
    closePanel(false);
    return;
  }
  if (panel.lang !== state.lang) {
    // Labels of the agent rows are built once per language.
    panel.lang = state.lang;
    panel.rows.clear();
    $('vp-agents').replaceChildren();
  }
  const node = $('village-panel');
  node.dataset.villageCode = String(v.code);
  setText($('vp-name'), v.name);
  const info = state.info.get(vid) || computeInfo(vid);
  const badge = $('vp-badge');
  badge.className = `badge b-${info.status}`;
  setText(badge, t(info.status));
  setText($('vp-code'), v.code);
  $('vp-day-link').href = `#/village/${v.id}/${countyDay(Date.now())}`;
  const parent = v.parent_id !== null && v.parent_id !== undefined ? state.regions.get(v.parent_id) : null;
  setText($('vp-township'), parent ? parent.name : t('noTownship'));
  const hasCoords = Number.isFinite(v.latitude) && Number.isFinite(v.longitude);
  setText($('vp-coords'), hasCoords ? t('coordsValue', v.latitude, v.longitude) : '—');
  const tags = Array.isArray(v.tags) ? v.tags.map(String) : [];
  const tagBox = $('vp-tags');
  const tagSig = JSON.stringify([state.lang, tags]);
  if (tagBox.dataset.sig !== tagSig) {
    tagBox.dataset.sig = tagSig;
    if (tags.length === 0) {
      tagBox.replaceChildren(document.createTextNode('—'));
    } else {
      tagBox.replaceChildren(
        ...tags.map((tag) => {
          const chip = el('span', 'tag', tagLabel(tag));
          chip.dataset.tag = tag;
          chip.title = tag;
          return chip;
        }),
      );
    }
  }
  paintPanelAgents();
  paintEnrol();
}

const FIELDS = [
  ['since', true],
  ['seen', true],
  ['version', false],
  ['peer', false],
  ['hw', true],
  ['audio', false],
  ['driver', false],
  ['offset', false],
  ['disk', false],
  ['cache', false],
  ['amp', false],
  ['sync', false],
  ['playing', true],
];

// An agent's sync report (protocol SyncReport) in words, and its state:
// up_to_date | downloading | failed | none.
export function syncText(sync) {
  const s = sync && typeof sync === 'object' && sync.state && typeof sync.state === 'object' ? sync.state : null;
  if (!s) return { state: 'none', text: t('syncNone') };
  if (s.state === 'up_to_date') return { state: 'up_to_date', text: t('syncUpToDate') };
  if (s.state === 'downloading') return { state: 'downloading', text: t('syncDownloading', s.done, s.total) };
  if (s.state === 'failed') return { state: 'failed', text: t('syncFailed', String(s.reason || '')) };
  return { state: 'none', text: t('syncNone') };
}

function buildAgentRow(id) {
  const li = el('li', 'agent');
  li.dataset.agentId = id;
  const head = el('div', 'ag-head');
  const host = el('span', 'ag-host');
  const idVal = el('span', 'ag-id mono', id);
  idVal.title = t('f_id');
  const badge = el('span', 'badge');
  const remove = el('button', 'danger-plain', t('removeAgent'));
  remove.type = 'button';
  remove.dataset.removeAgent = id;
  head.append(host, idVal, badge, remove);
  const dl = el('dl', 'ag-grid');
  const fields = {};
  for (const [key, wide] of FIELDS) {
    const f = el('div', wide ? 'f wide' : 'f');
    f.dataset.field = key;
    const dt = el('dt', null, t(`f_${key}`));
    const dd = el('dd');
    f.append(dt, dd);
    dl.append(f);
    fields[key] = { f, dd };
  }
  const note = el('p', 'ag-note');
  li.append(head, dl, note);
  return { li, host, badge, fields, note, remove };
}

function setField(r, key, text, show) {
  const { f, dd } = r.fields[key];
  if (f.hidden === show) f.hidden = !show;
  setText(dd, text);
}

function paintAgentRow(r, a) {
  const online = a.online === true;
  r.li.dataset.online = String(online);
  setText(r.host, str(a.hostname || a.id));
  r.badge.className = `badge b-${online ? 'online' : 'offline'}`;
  setText(r.badge, t(online ? 'online' : 'offline'));
  setAttr(r.remove, 'aria-label', `${t('removeAgent')}: ${a.hostname || a.id}`);

  const since = online ? parseTime(a.connected_since) : null;
  setField(r, 'since', since === null ? '—' : timeAndAgo(since), online);
  const seen = parseTime(a.last_seen);
  // Online, "last seen" is now: shown only for an agent that is away.
  setField(r, 'seen', seen === null ? t('never') : timeAndAgo(seen), !online);
  setField(r, 'version', str(a.agent_version), true);
  setField(r, 'peer', str(a.peer), online);
  const hw = a.hardware && typeof a.hardware === 'object' ? a.hardware : {};
  const board = [hw.model, hw.arch, hw.os].filter((x) => typeof x === 'string' && x !== '');
  setField(r, 'hw', board.length ? board.join(' · ') : '—', true);
  setField(r, 'audio', str(hw.audio_output), true);
  setField(r, 'driver', str(hw.amplifier_driver), true);

  const st = online && a.status && typeof a.status === 'object' ? a.status : null;
  const offset = st && Number.isFinite(st.clock_offset_ms) ? st.clock_offset_ms : null;
  setField(r, 'offset', offset === null ? '—' : formatOffset(offset), st !== null);
  const warn = offset !== null && Math.abs(offset) > OFFSET_WARN_MS;
  const offsetDd = r.fields.offset.dd;
  offsetDd.classList.toggle('warn', warn);
  setAttr(offsetDd, 'title', warn ? t('offsetWarn') : null);
  setAttr(r.fields.offset.f, 'data-warn', warn ? 'true' : null);
  setField(r, 'disk', st ? formatBytes(st.disk_free_bytes) : '—', st !== null);
  setField(r, 'cache', st ? formatBytes(st.cache_bytes) : '—', st !== null);
  const amp = st && AMP_STATES.has(st.amplifier) ? st.amplifier : 'unknown';
  setField(r, 'amp', t(`amp_${amp}`), st !== null);
  r.fields.amp.dd.dataset.amp = amp;
  const sync = syncText(online ? a.sync : null);
  setField(r, 'sync', sync.text, online);
  r.fields.sync.dd.dataset.sync = sync.state;
  const np = st && st.now_playing && typeof st.now_playing === 'object' ? st.now_playing : null;
  let playing = t('nothingPlaying');
  if (np && np.title) {
    playing = Number.isFinite(np.since_ms) ? `${np.title} — ${t('playingSince', absTime(np.since_ms))}` : String(np.title);
  }
  setField(r, 'playing', playing, st !== null);

  const note = st ? '' : online ? t('noStatusYet') : t('offlineNoStatus');
  setText(r.note, note);
  r.note.hidden = note === '';
}

function paintPanelAgents() {
  const vid = panel.villageId;
  const agents = villageAgents(vid);
  setText($('vp-agents-h'), t('agentsHeading', agents.length));
  $('vp-no-agents').hidden = agents.length > 0;
  const list = $('vp-agents');
  const keep = new Set(agents.map((a) => a.id));
  for (const [id, r] of panel.rows) {
    if (!keep.has(id)) {
      r.li.remove();
      panel.rows.delete(id);
    }
  }
  agents.forEach((a, i) => {
    let r = panel.rows.get(a.id);
    if (!r) {
      r = buildAgentRow(a.id);
      panel.rows.set(a.id, r);
    }
    paintAgentRow(r, a);
    // Move only what is out of place, so a focused button keeps focus.
    if (list.children[i] !== r.li) list.insertBefore(r.li, list.children[i] || null);
  });
}

// Cards open the panel (click, Enter, Space); the close button and Esc
// close it.
export function initPanel() {
  const tree = $('tree');
  const cardOf = (target) => {
    const card = target && target.closest ? target.closest('.village[data-village-id]') : null;
    return card && tree.contains(card) ? card : null;
  };
  const open = (card) => {
    const id = Number(card.dataset.villageId);
    if (Number.isFinite(id)) openPanel(id, card);
  };
  tree.addEventListener('click', (ev) => {
    const card = cardOf(ev.target);
    if (card) open(card);
  });
  tree.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' && ev.key !== ' ') return;
    const card = cardOf(ev.target);
    if (!card || ev.target !== card) return;
    ev.preventDefault();
    open(card);
  });
  $('vp-close').addEventListener('click', () => closePanel(true));
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape' || panel.villageId === null || ev.defaultPrevented) return;
    if ($('confirm-remove').open) return;
    // Esc in a filled search box clears the search first.
    if (ev.target === $('filter-text') && $('filter-text').value !== '') return;
    ev.preventDefault();
    closePanel(true);
  });
}
