// Shared state and the DOM helpers every module uses.
//
// `state` is the directory, the agents and what is on screen; `panel` is
// the open village panel. Modules change their fields, never rebind them.

export const state = {
  lang: 'zh',
  built: false,
  regions: new Map(), // id -> region
  villages: [], // village regions, by code
  townships: [], // {id, key, name, code, villages: [region]}
  townshipOf: new Map(), // village id -> township key
  agents: new Map(), // agent id -> agent
  agentsByVillage: new Map(), // village id -> Set(agent id)
  info: new Map(), // village id -> computed info
  cards: new Map(), // village id -> card elements
  twEls: new Map(), // township key -> {section, chip, ...}
  filter: { text: '', status: 'all', township: null },
  collapsed: new Set(), // township codes
};

// The village panel: one village at a time.
export const panel = {
  villageId: null,
  opener: null, // the card to give focus back to
  rows: new Map(), // agent id -> row elements
  lang: null,
};

export const $ = (id) => document.getElementById(id);

// Creates an element; text is always set through textContent.
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

export function setAttr(node, name, value) {
  if (value === null || value === undefined || value === '') {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, String(value));
  }
}
