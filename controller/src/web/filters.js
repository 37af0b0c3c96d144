// Filtering the cards (text, status, township) and collapsing townships.
import { t } from './i18n.js';
import { townshipName } from './model.js';
import { $, setText, state } from './state.js';

const COLLAPSED_KEY = 'dalaba.collapsed';

function matches(c) {
  const f = state.filter;
  const info = state.info.get(c.village.id);
  const status = info ? info.status : 'none';
  if (f.status !== 'all' && status !== f.status) return false;
  if (f.township !== null && state.townshipOf.get(c.village.id) !== f.township) return false;
  if (f.text) {
    const q = f.text;
    const name = String(c.village.name).toLowerCase();
    if (!name.includes(q) && !String(c.village.code).includes(q)) return false;
  }
  return true;
}

export function applyFilterTo(c) {
  const show = matches(c);
  if (c.li.hidden === show) c.li.hidden = !show;
  const key = state.townshipOf.get(c.village.id);
  const e = state.twEls.get(key);
  if (e) paintSectionVisibility(e);
  paintResultCount();
}

function paintSectionVisibility(e) {
  const f = state.filter;
  let visible = 0;
  for (const v of e.tw.villages) {
    const c = state.cards.get(v.id);
    if (c && !c.li.hidden) visible += 1;
  }
  const filtering = f.text !== '' || f.status !== 'all' || f.township !== null;
  const hide = f.township !== null ? f.township !== e.tw.key : filtering && visible === 0;
  if (e.section.hidden !== hide) e.section.hidden = hide;
  e.visible = visible;
}

function paintResultCount() {
  let shown = 0;
  for (const c of state.cards.values()) if (!c.li.hidden) shown += 1;
  setText($('result-count'), state.built ? t('resultCount', shown, state.cards.size) : '');
  const noMatch = $('no-match');
  if (noMatch) noMatch.hidden = !(state.cards.size > 0 && shown === 0);
}

export function applyFilters() {
  for (const c of state.cards.values()) {
    const show = matches(c);
    if (c.li.hidden === show) c.li.hidden = !show;
  }
  for (const e of state.twEls.values()) {
    paintSectionVisibility(e);
    const pressed = state.filter.township === e.tw.key;
    e.chip.setAttribute('aria-pressed', String(pressed));
  }
  const clear = $('township-clear');
  const tw = state.filter.township !== null ? state.twEls.get(state.filter.township) : null;
  clear.hidden = !tw;
  if (tw) {
    setText(clear, t('onlyTownship', townshipName(tw.tw)));
    clear.setAttribute('aria-label', t('clearTownship'));
  }
  paintResultCount();
}

export function selectTownship(key) {
  const same = state.filter.township === key;
  state.filter.township = same ? null : key;
  applyFilters();
  const e = state.twEls.get(key);
  if (!same && e) {
    if (state.collapsed.has(e.tw.code || e.tw.key)) setCollapsed(e.tw, false);
    e.section.scrollIntoView({ block: 'start', behavior: prefersReducedMotion() ? 'auto' : 'smooth' });
  } else if (same && e) {
    e.section.scrollIntoView({ block: 'start' });
  }
}

function prefersReducedMotion() {
  return window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
}

export function setCollapsed(tw, collapsed) {
  const key = tw.code || tw.key;
  if (collapsed) state.collapsed.add(key);
  else state.collapsed.delete(key);
  paintCollapsed(tw);
  try {
    localStorage.setItem(COLLAPSED_KEY, JSON.stringify([...state.collapsed]));
  } catch (_) {
    /* storage may be unavailable */
  }
}

export function paintCollapsed(tw) {
  const e = state.twEls.get(tw.key);
  if (!e) return;
  const collapsed = state.collapsed.has(tw.code || tw.key);
  e.toggle.setAttribute('aria-expanded', String(!collapsed));
  e.body.hidden = collapsed;
  e.section.classList.toggle('collapsed', collapsed);
}

// The townships collapsed in an earlier visit.
export function restoreCollapsed() {
  try {
    const saved = JSON.parse(localStorage.getItem(COLLAPSED_KEY) || '[]');
    if (Array.isArray(saved)) state.collapsed = new Set(saved.map(String));
  } catch (_) {
    /* ignore */
  }
}
