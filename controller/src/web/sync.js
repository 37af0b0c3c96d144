// Keeping the page in step with the controller: loading the regions and
// the agents, retrying with a banner when that fails, and the event stream.
import { API, LoadError, getJSON } from './api.js';
import { applyFilters } from './filters.js';
import { t } from './i18n.js';
import { absorbAgent, setAgents } from './model.js';
import { $, setText, state } from './state.js';
import { paintCard, paintCounts, setRegions } from './tree.js';

const STREAM_WAIT_MS = 1500;

// ---- Loading -----------------------------------------------------------

let loadInFlight = null;
let loadQueued = false;
let wantRegions = true;
let pendingEvents = null; // events received while /agents is being fetched
let retryDelay = 2000;
let retryTimer = null;
let countdownTimer = null;
let lastError = null;
let reloadOnOpen = false;

export function requestLoad(withRegions) {
  if (withRegions) wantRegions = true;
  if (loadInFlight) {
    loadQueued = true;
    return;
  }
  clearRetry();
  loadInFlight = doLoad().finally(() => {
    loadInFlight = null;
    if (loadQueued) {
      loadQueued = false;
      requestLoad(false);
    }
  });
}

async function doLoad() {
  const needRegions = wantRegions || !state.built;
  wantRegions = false;
  try {
    const regionsP = needRegions ? getJSON('/regions') : Promise.resolve(null);
    // Open the stream first so that no change falls between the list and
    // the events; wait for it only briefly.
    if (!state.built && !live) await Promise.race([streamOpened, sleep(STREAM_WAIT_MS)]);
    if (!live) reloadOnOpen = true;
    pendingEvents = [];
    const [regions, agents] = await Promise.all([regionsP, getJSON('/agents')]);
    const replay = pendingEvents;
    pendingEvents = null;
    setAgents(agents);
    for (const a of replay) absorbAgent(a);
    if (regions) {
      setRegions(regions);
    } else {
      for (const v of state.villages) paintCard(v.id, false);
      paintCounts();
      if (state.filter.status !== 'all') applyFilters();
    }
    // Agents of villages we do not know yet: reload the directory once.
    if (!needRegions) {
      for (const a of state.agents.values()) {
        if (!state.regions.has(a.village_id)) {
          wantRegions = true;
          loadQueued = true;
          break;
        }
      }
    }
    lastError = null;
    retryDelay = 2000;
    hideBanner();
    if (document.body.dataset.ready !== 'true') document.body.dataset.ready = 'true';
  } catch (e) {
    if (pendingEvents) {
      for (const a of pendingEvents) absorbAgent(a);
      pendingEvents = null;
    }
    if (needRegions) wantRegions = true;
    lastError = e instanceof LoadError ? e : new LoadError('network', null, String(e && e.message));
    if (!(e instanceof LoadError)) console.error(e);
    scheduleRetry();
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function clearRetry() {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  retryTimer = null;
  countdownTimer = null;
}

function scheduleRetry() {
  clearRetry();
  const due = Date.now() + retryDelay;
  retryTimer = setTimeout(() => {
    clearRetry();
    paintBanner(null);
    requestLoad(false);
  }, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30000);
  const tick = () => paintBanner(Math.max(1, Math.ceil((due - Date.now()) / 1000)));
  tick();
  countdownTimer = setInterval(tick, 1000);
}

function paintBanner(secondsLeft) {
  if (!lastError) return;
  const e = lastError;
  const head = e.kind === 'http' || e.kind === 'parse' ? t('serverError') : t('unreachable');
  let detail;
  if (e.kind === 'http') detail = `HTTP ${e.status}${e.detail ? `: ${e.detail}` : ''}`;
  else if (e.kind === 'parse') detail = t('errParse');
  else if (e.kind === 'timeout') detail = t('errTimeout');
  else detail = t('errNetwork');
  const parts = [t('errWrap', head, detail)];
  parts.push(secondsLeft === null ? t('retrying') : t('retryIn', secondsLeft));
  if (state.built) parts.push(t('staleNote'));
  setText($('banner-text'), parts.join(' · '));
  $('banner').hidden = false;
  bannerSeconds = secondsLeft;
}
let bannerSeconds = null;

function hideBanner() {
  clearRetry();
  $('banner').hidden = true;
}

// The banner's retry button: load now rather than at the end of the countdown.
export function retryNow() {
  clearRetry();
  paintBanner(null);
  requestLoad(false);
}

// ---- Event stream ------------------------------------------------------

let live = false;
let source = null;
let streamRetry = 1000;
let resolveStreamOpened;
const streamOpened = new Promise((resolve) => {
  resolveStreamOpened = resolve;
});

export function connectEvents() {
  if (typeof EventSource === 'undefined') return;
  const es = new EventSource(`${API}/events`);
  source = es;
  es.addEventListener('open', () => {
    if (source !== es) return;
    streamRetry = 1000;
    setLive(true);
    resolveStreamOpened();
    // Changes may have been missed while the stream was down.
    if (reloadOnOpen || lastError) {
      reloadOnOpen = false;
      requestLoad(false);
      for (const fn of liveListeners) fn(null);
      for (const fn of alarmListeners) fn(null);
    }
  });
  es.addEventListener('error', () => {
    if (source !== es) return;
    if (live) reloadOnOpen = true;
    setLive(false);
    // The browser reconnects by itself unless the server refused the
    // stream outright; then we start a new one after a pause.
    if (es.readyState === EventSource.CLOSED) {
      es.close();
      source = null;
      setTimeout(connectEvents, streamRetry);
      streamRetry = Math.min(streamRetry * 2, 30000);
    }
  });
  es.addEventListener('agent', (ev) => {
    let a;
    try {
      a = JSON.parse(ev.data);
    } catch (_) {
      return;
    }
    onAgentEvent(a);
  });
  es.addEventListener('live', (ev) => {
    let e;
    try {
      e = JSON.parse(ev.data);
    } catch (_) {
      return;
    }
    for (const fn of liveListeners) fn(e);
  });
  es.addEventListener('alarm', (ev) => {
    let a;
    try {
      a = JSON.parse(ev.data);
    } catch (_) {
      return;
    }
    for (const fn of alarmListeners) fn(a);
  });
  es.addEventListener('resync', () => {
    requestLoad(false);
    for (const fn of liveListeners) fn(null);
    for (const fn of alarmListeners) fn(null);
  });
}

// Who hears the stream's live-session events (the live console): `fn(event)`
// for each, `fn(null)` when some may have been missed (reload). Returns the
// function that stops it.
const liveListeners = new Set();
export function onLiveEvent(fn) {
  liveListeners.add(fn);
  return () => liveListeners.delete(fn);
}

// Who hears the stream's operator alarms (the dashboard's panel): `fn(alarm)`
// for each raise, clear or acknowledgement, `fn(null)` when some may have
// been missed (reload).
const alarmListeners = new Set();
export function onAlarmEvent(fn) {
  alarmListeners.add(fn);
  return () => alarmListeners.delete(fn);
}

function onAgentEvent(a) {
  if (pendingEvents) pendingEvents.push(a);
  const touched = absorbAgent(a);
  if (!state.built) return;
  let unknown = false;
  for (const vid of touched) {
    if (state.cards.has(vid)) paintCard(vid, true);
    else if (vid === a.village_id) unknown = true;
  }
  paintCounts();
  // An agent of a village we do not know: the directory changed.
  if (unknown) requestLoad(true);
}

function setLive(on) {
  live = on;
  const node = $('live');
  node.dataset.connected = String(on);
  setText($('live-text'), on ? t('liveOn') : t('liveOff'));
  node.title = on ? t('liveOnTitle') : t('liveOffTitle');
}

// Repaints the stream state and the banner in the current language.
export function relabelLive() {
  setLive(live);
  if (!$('banner').hidden) paintBanner(bannerSeconds);
}
