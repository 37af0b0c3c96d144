// The region tree: townships with their village cards, and the township
// chips in the side bar. Built when the regions change; painted in place
// when the agents change.
import { LoadError } from './api.js';
import { applyFilterTo, applyFilters, paintCollapsed, selectTownship, setCollapsed } from './filters.js';
import { absTime, relTime } from './format.js';
import { t, tagLabel } from './i18n.js';
import { computeInfo, townshipName } from './model.js';
import { closePanel, paintPanel } from './panel.js';
import { $, el, panel, setAttr, setText, state } from './state.js';

// ---- Building the tree (only when the regions change) -----------------

export function setRegions(list) {
  if (!Array.isArray(list)) throw new LoadError('parse');
  const regions = new Map();
  for (const r of list) {
    if (r && typeof r === 'object' && r.id !== undefined) regions.set(r.id, r);
  }
  const byCode = (a, b) => String(a.code).localeCompare(String(b.code));
  const counties = list.filter((r) => r && r.level === 'county').sort(byCode);
  const townshipRegions = list.filter((r) => r && r.level === 'township').sort(byCode);
  const villages = list.filter((r) => r && r.level === 'village').sort(byCode);

  const townships = townshipRegions.map((r) => ({ key: String(r.id), id: r.id, name: r.name, code: r.code, villages: [] }));
  const byKey = new Map(townships.map((tw) => [tw.key, tw]));
  let orphans = null;
  const townshipOf = new Map();
  for (const v of villages) {
    let tw = byKey.get(String(v.parent_id));
    if (!tw) {
      if (!orphans) orphans = { key: 'none', id: null, name: null, code: '', villages: [] };
      tw = orphans;
    }
    tw.villages.push(v);
    townshipOf.set(v.id, tw.key);
  }
  if (orphans) townships.push(orphans);

  state.regions = regions;
  state.villages = villages;
  state.townships = townships;
  state.townshipOf = townshipOf;
  state.countyName = counties.map((c) => c.name).join('、');
  if (state.filter.township !== null && !byKey.has(state.filter.township) && state.filter.township !== 'none') {
    state.filter.township = null;
  }
  buildDom();
}

function buildDom() {
  state.cards.clear();
  state.twEls.clear();
  state.info.clear();
  const tree = $('tree');
  const list = $('township-list');
  const sections = [];
  const chips = [];

  const heading = el('h2', 'visually-hidden');
  heading.dataset.i18n = 'treeHeading';
  heading.textContent = t('treeHeading');
  sections.push(heading);

  for (const tw of state.townships) {
    const sectionId = `tw-${tw.key}`;
    const section = el('section', 'township');
    section.id = sectionId;
    section.dataset.township = tw.key;
    const h3 = el('h3', 'tw-head');
    const toggle = el('button', 'tw-toggle');
    toggle.type = 'button';
    toggle.setAttribute('aria-controls', `${sectionId}-body`);
    const caret = el('span', 'caret');
    caret.setAttribute('aria-hidden', 'true');
    const name = el('span', 'tw-title', townshipName(tw));
    name.id = `${sectionId}-title`;
    const summary = el('span', 'tw-sum');
    const sOn = el('span', 'n n-online');
    const sOff = el('span', 'n n-offline');
    const sNone = el('span', 'n n-none');
    const sTotal = el('span', 'n n-total');
    summary.append(sTotal, sOn, sOff, sNone);
    toggle.append(caret, name, summary);
    h3.append(toggle);
    const body = el('div', 'villages');
    body.id = `${sectionId}-body`;
    body.setAttribute('role', 'group');
    body.setAttribute('aria-labelledby', `${sectionId}-title`);
    const empty = el('p', 'empty-note', t('emptyTownship'));
    empty.hidden = tw.villages.length > 0;
    body.append(empty);
    for (const v of tw.villages) body.append(buildCard(v));
    section.append(h3, body);
    toggle.addEventListener('click', () => setCollapsed(tw, !state.collapsed.has(tw.code || tw.key)));
    sections.push(section);

    // The summary chip in the side bar.
    const li = el('li');
    const chip = el('button', 'tw-chip');
    chip.type = 'button';
    chip.dataset.township = tw.key;
    chip.setAttribute('aria-pressed', 'false');
    const row = el('span', 'tw-row');
    row.setAttribute('aria-hidden', 'true');
    const cName = el('span', 'tw-name', townshipName(tw));
    const cOn = el('span', 'n n-online');
    const cOff = el('span', 'n n-offline');
    const cNone = el('span', 'n n-none');
    const cTotal = el('span', 'n n-total');
    row.append(cName, cOn, cOff, cNone, cTotal);
    const bar = el('span', 'bar');
    bar.setAttribute('aria-hidden', 'true');
    const bOn = el('span', 'b-online');
    const bOff = el('span', 'b-offline');
    const bNone = el('span', 'b-none');
    bar.append(bOn, bOff, bNone);
    chip.append(row, bar);
    chip.addEventListener('click', () => selectTownship(tw.key));
    li.append(chip);
    chips.push(li);

    state.twEls.set(tw.key, {
      tw, section, toggle, body, empty, name, sTotal, sOn, sOff, sNone,
      chip, cName, cTotal, bOn, bOff, bNone, cOn, cOff, cNone, counts: null,
    });
    paintCollapsed(tw);
  }

  const noMatch = el('p', 'no-match', t('noMatch'));
  noMatch.id = 'no-match';
  noMatch.hidden = true;
  sections.push(noMatch);
  if (state.townships.length === 0) {
    sections.push(el('p', 'no-match', t('noRegions')));
  }

  tree.replaceChildren(...sections);
  list.replaceChildren(...chips);
  setText($('county-name'), state.countyName || '');
  state.built = true;
  // The open village may have left the directory.
  if (panel.villageId !== null && !state.cards.has(panel.villageId)) closePanel(false);
  for (const v of state.villages) paintCard(v.id, false);
  paintCounts();
  applyFilters();
}

function buildCard(v) {
  // A card is a button: it opens the village panel.
  const li = el('div', 'village');
  li.dataset.villageCode = String(v.code);
  li.dataset.status = 'none';
  li.dataset.villageId = String(v.id);
  li.setAttribute('role', 'button');
  li.tabIndex = 0;
  li.setAttribute('aria-haspopup', 'dialog');
  li.setAttribute('aria-controls', 'village-panel');
  if (panel.villageId === v.id) li.dataset.selected = 'true';

  const head = el('div', 'v-head');
  const name = el('span', 'v-name', v.name);
  name.title = v.name;
  const badge = el('span', 'badge');
  head.append(name, badge);

  const sub = el('div', 'v-sub');
  const code = el('span', 'v-code', v.code);
  const agentsN = el('span', 'v-agents');
  const tags = el('span', 'v-tags');
  const tagEls = [];
  for (const tag of Array.isArray(v.tags) ? v.tags : []) {
    const chip = el('span', 'tag', tagLabel(String(tag)));
    chip.dataset.tag = String(tag);
    chip.title = String(tag);
    tags.append(chip);
    tagEls.push(chip);
  }
  sub.append(code, agentsN, tags);

  const meta = el('div', 'v-meta');
  const seen = el('span', 'v-seen');
  const seenLbl = el('span', 'lbl');
  const seenVal = el('span', 'val');
  seen.append(seenLbl, seenVal);
  const amp = el('span', 'v-amp');
  const ampLbl = el('span', 'lbl');
  const ampVal = el('span', 'val');
  amp.append(ampLbl, ampVal);
  meta.append(seen, amp);

  const play = el('div', 'v-play');
  const playIcon = el('span', 'play-icon', '♪');
  playIcon.setAttribute('aria-hidden', 'true');
  const playLbl = el('span', 'visually-hidden');
  const playVal = el('span', 'val');
  play.append(playIcon, playLbl, playVal);

  li.append(head, sub, meta, play);
  state.cards.set(v.id, {
    li, name, badge, code, agentsN, tagEls, seen, seenLbl, seenVal, amp, ampLbl, ampVal, play, playLbl, playVal,
    sig: null,
    village: v,
  });
  return li;
}

// ---- Painting (in place, only what changed) ---------------------------

export function paintCard(villageId, flash) {
  const c = state.cards.get(villageId);
  if (!c) return;
  const info = computeInfo(villageId);
  const sig = JSON.stringify([info.status, info.agents, info.lastSeen, info.connectedSince, info.amp, info.title, info.since]);
  const prev = state.info.get(villageId);
  state.info.set(villageId, info);
  if (panel.villageId === villageId) paintPanel();
  if (c.sig === sig) return;
  c.sig = sig;

  c.li.dataset.status = info.status;
  c.badge.className = `badge b-${info.status}`;
  setText(c.badge, t(info.status));
  setText(c.agentsN, info.agents.length > 1 ? t('agentsN', info.agents.length) : '');
  const agentList = info.agents.map((a) => t('agentItem', a.name, t(a.online ? 'online' : 'offline'))).join(t('listSep'));
  setAttr(c.li, 'title', info.agents.length ? t('agentsTitle', agentList) : t('noAgentTitle'));
  setText(c.seenLbl, t('seen'));
  paintSeen(c, info);

  setText(c.ampLbl, t('amp'));
  c.amp.dataset.amp = info.status === 'none' ? 'na' : info.amp;
  setText(c.ampVal, info.status === 'none' ? '—' : t(`amp_${info.amp}`));

  setText(c.playLbl, `${t('playing')}:`);
  c.play.dataset.playing = info.title ? 'true' : 'false';
  setText(c.playVal, info.title || t('nothingPlaying'));
  setAttr(c.play, 'title', info.title ? (info.since ? `${info.title} — ${t('playingSince', absTime(info.since))}` : info.title) : null);

  if (flash && prev) {
    c.li.classList.remove('flash');
    void c.li.offsetWidth; // restart the animation
    c.li.classList.add('flash');
  }
  if (state.filter.status !== 'all' && (!prev || prev.status !== info.status)) applyFilterTo(c);
}

function paintSeen(c, info) {
  let text;
  let title = null;
  if (info.status === 'online') {
    text = t('seenNow');
    const parts = [];
    if (info.connectedSince !== null) parts.push(t('connectedSinceAt', absTime(info.connectedSince)));
    if (info.lastSeen !== null) parts.push(t('lastSeenAt', absTime(info.lastSeen)));
    title = parts.join('\n');
  } else if (info.status === 'offline') {
    if (info.lastSeen === null) {
      text = t('never');
    } else {
      text = relTime(info.lastSeen);
      title = t('lastSeenAt', absTime(info.lastSeen));
    }
  } else {
    text = '—';
  }
  setText(c.seenVal, text);
  setAttr(c.seen, 'title', title);
}

export function refreshRelativeTimes() {
  for (const [id, c] of state.cards) {
    const info = state.info.get(id);
    if (info) paintSeen(c, info);
  }
  if (panel.villageId !== null) paintPanel();
}

function countsOf(villages) {
  const n = { villages: villages.length, online: 0, offline: 0, none: 0 };
  for (const v of villages) {
    const info = state.info.get(v.id);
    n[info ? info.status : 'none'] += 1;
  }
  return n;
}

export function paintCounts() {
  const total = countsOf(state.villages);
  setText($('count-villages'), total.villages);
  setText($('count-online'), total.online);
  setText($('count-offline'), total.offline);
  setText($('count-none'), total.none);
  for (const e of state.twEls.values()) {
    const n = countsOf(e.tw.villages);
    const sig = `${n.villages}/${n.online}/${n.offline}/${n.none}/${state.lang}`;
    if (e.counts === sig) continue;
    e.counts = sig;
    const name = townshipName(e.tw);
    setText(e.cTotal, `/${n.villages}`);
    setText(e.cOn, n.online);
    setText(e.cOff, n.offline);
    setText(e.cNone, n.none);
    e.bOn.style.flexGrow = String(n.online);
    e.bOff.style.flexGrow = String(n.offline);
    e.bNone.style.flexGrow = String(n.none);
    e.chip.setAttribute('aria-label', t('twAria', name, n.villages, n.online, n.offline, n.none));
    e.chip.classList.toggle('has-offline', n.offline > 0);
    setText(e.sTotal, t('twSummary', n.villages));
    setText(e.sOn, `${t('online')} ${n.online}`);
    setText(e.sOff, `${t('offline')} ${n.offline}`);
    setText(e.sNone, `${t('none')} ${n.none}`);
  }
}
