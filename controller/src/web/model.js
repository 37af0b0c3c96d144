// The agents by village and what each village shows, computed from them.
// No DOM here.
import { LoadError } from './api.js';
import { parseTime } from './format.js';
import { t } from './i18n.js';
import { state } from './state.js';

export const AMP_STATES = new Set(['on', 'off', 'unknown', 'fault']);

// What a village shows, from all its agents: online if any is online; the
// details come from the freshest agent (online ones first).
export function computeInfo(villageId) {
  const ids = state.agentsByVillage.get(villageId);
  const agents = ids ? [...ids].map((id) => state.agents.get(id)).filter(Boolean) : [];
  if (agents.length === 0) {
    return { status: 'none', agents: [], lastSeen: null, connectedSince: null, amp: null, title: null, since: null };
  }
  const seen = (a) => parseTime(a.last_seen) || 0;
  const online = agents.filter((a) => a.online === true);
  const pool = (online.length ? online : agents).slice().sort((a, b) => seen(b) - seen(a));
  const withStatus = pool.find((a) => a.status && typeof a.status === 'object');
  const status = withStatus ? withStatus.status : null;
  let lastSeen = null;
  for (const a of agents) {
    const s = parseTime(a.last_seen);
    if (s !== null && (lastSeen === null || s > lastSeen)) lastSeen = s;
  }
  let connectedSince = null;
  for (const a of online) {
    const s = parseTime(a.connected_since);
    if (s !== null && (connectedSince === null || s < connectedSince)) connectedSince = s;
  }
  let amp = 'unknown';
  if (status && AMP_STATES.has(status.amplifier)) amp = status.amplifier;
  const np = status && status.now_playing && typeof status.now_playing === 'object' ? status.now_playing : null;
  return {
    status: online.length ? 'online' : 'offline',
    agents: agents
      .slice()
      .sort((a, b) => Number(b.online === true) - Number(a.online === true) || seen(b) - seen(a))
      .map((a) => ({ name: String(a.hostname || a.id), online: a.online === true })),
    lastSeen,
    connectedSince,
    amp,
    title: np && np.title ? String(np.title) : null,
    since: np && Number.isFinite(np.since_ms) ? np.since_ms : null,
  };
}

export function townshipName(tw) {
  return tw.name === null ? t('noTownship') : tw.name;
}

function indexAgent(a) {
  let set = state.agentsByVillage.get(a.village_id);
  if (!set) {
    set = new Set();
    state.agentsByVillage.set(a.village_id, set);
  }
  set.add(a.id);
}

export function setAgents(list) {
  if (!Array.isArray(list)) throw new LoadError('parse');
  state.agents = new Map();
  state.agentsByVillage = new Map();
  for (const a of list) {
    if (!a || typeof a.id !== 'string') continue;
    state.agents.set(a.id, a);
    indexAgent(a);
  }
}

// Applies one agent event to the data; returns the village ids touched.
export function absorbAgent(a) {
  if (!a || typeof a !== 'object' || typeof a.id !== 'string') return [];
  const old = state.agents.get(a.id);
  const touched = [a.village_id];
  if (old && old.village_id !== a.village_id) {
    const set = state.agentsByVillage.get(old.village_id);
    if (set) set.delete(a.id);
    touched.push(old.village_id);
  }
  state.agents.set(a.id, a);
  indexAgent(a);
  return touched;
}

export function villageAgents(villageId) {
  const ids = state.agentsByVillage.get(villageId);
  const list = ids ? [...ids].map((id) => state.agents.get(id)).filter(Boolean) : [];
  // A stable order: online first, then by enrolment.
  return list.sort(
    (a, b) =>
      Number(b.online === true) - Number(a.online === true) ||
      String(a.enrolled_at || '').localeCompare(String(b.enrolled_at || '')) ||
      a.id.localeCompare(b.id),
  );
}
