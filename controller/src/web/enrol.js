// Enrolment codes for the open village, and the exact command the
// technician runs on the board.
import { LoadError, apiMessage, getJSON, loadErrorText, sendJSON } from './api.js';
import { absTime, durationText, parseTime } from './format.js';
import { t } from './i18n.js';
import { villageAgents } from './model.js';
import { $, panel, setText, state } from './state.js';

// Enrolment codes created on this page, by village id: kept while they
// are valid, so closing the panel by mistake does not lose the code.
const codes = new Map();
let controllerInfo = null;

const STATE_DIR = '/var/lib/dalaba-agent';

function shellWord(s) {
  const v = String(s);
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

// The command the technician runs, for this controller's address.
function enrolCommand(code, fingerprint) {
  const words = ['dalaba-agent', '--state-dir', STATE_DIR, 'enrol', '--controller', location.origin, '--code', code];
  if (fingerprint) words.push('--fingerprint', fingerprint);
  return words.map(shellWord).join(' ');
}

export function paintEnrol() {
  const vid = panel.villageId;
  const entry = codes.get(vid);
  setText($('create-code'), t('createCode'));
  const result = $('enrol-result');
  if (!entry) {
    result.hidden = true;
    setText($('enrol-code'), '');
    setText($('enrol-command'), '');
    return;
  }
  result.hidden = false;
  setText($('enrol-code'), entry.code);
  setText($('enrol-command'), entry.command);
  setText($('run-command'), `dalaba-agent --state-dir ${STATE_DIR} run`);
  const left = entry.expiresAt === null ? null : entry.expiresAt - Date.now();
  const expired = left !== null && left <= 0;
  result.dataset.expired = String(expired);
  let expiry = '';
  if (entry.expiresAt !== null) {
    expiry = expired ? t('expiredAt', absTime(entry.expiresAt)) : t('expiresAt', absTime(entry.expiresAt), durationText(left));
  }
  setText($('enrol-expiry'), expiry);
  // Agents that were not there when the code was made.
  const fresh = villageAgents(vid).filter((a) => !entry.before.has(a.id));
  const joined = $('enrol-joined');
  if (fresh.length) {
    const a = fresh[0];
    setText(joined, t('newAgent', a.hostname || a.id, t(a.online ? 'online' : 'offline')));
    joined.dataset.online = String(a.online === true);
    joined.hidden = false;
  } else {
    joined.hidden = true;
    setText(joined, '');
  }
}

async function createCode() {
  const vid = panel.villageId;
  if (vid === null) return;
  const button = $('create-code');
  const error = $('enrol-error');
  button.disabled = true;
  setText(button, t('creatingCode'));
  error.hidden = true;
  try {
    if (!controllerInfo) {
      const info = await getJSON('/controller');
      if (!info || typeof info !== 'object') throw new LoadError('parse');
      controllerInfo = info;
    }
    const fingerprint = typeof controllerInfo.cert_sha256 === 'string' ? controllerInfo.cert_sha256 : '';
    const before = new Set(state.agentsByVillage.get(vid) || []);
    const res = await sendJSON('POST', `/villages/${encodeURIComponent(vid)}/enrolment-codes`, {});
    if (res.status !== 201) throw new LoadError('http', res.status, apiMessage(res));
    const body = res.data;
    if (!body || typeof body.code !== 'string' || body.code === '') throw new LoadError('parse', res.status);
    codes.set(vid, {
      code: body.code,
      expiresAt: parseTime(body.expires_at),
      command: enrolCommand(body.code, fingerprint),
      before,
    });
    if (panel.villageId === vid) {
      setText($('copy-status'), '');
      paintEnrol();
      $('enrol-result').scrollIntoView({ block: 'nearest' });
    }
  } catch (e) {
    if (!(e instanceof LoadError)) console.error(e);
    if (panel.villageId === vid) {
      setText(error, t('createFailed', loadErrorText(e)));
      error.hidden = false;
    }
  } finally {
    button.disabled = false;
    if (panel.villageId !== null) paintEnrol();
  }
}

function selectText(node) {
  const sel = window.getSelection();
  if (!sel) return;
  const range = document.createRange();
  range.selectNodeContents(node);
  sel.removeAllRanges();
  sel.addRange(range);
}

async function copyCommand() {
  const node = $('enrol-command');
  const text = node.textContent;
  const status = $('copy-status');
  if (!text) return;
  // The async clipboard needs a secure context (HTTPS or localhost).
  if (window.isSecureContext && navigator.clipboard && navigator.clipboard.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      setText(status, t('copied'));
      return;
    } catch (_) {
      /* fall back to selecting */
    }
  }
  selectText(node);
  let copied = false;
  try {
    copied = document.execCommand('copy');
  } catch (_) {
    copied = false;
  }
  setText(status, copied ? t('copied') : t('copySelect'));
}

export function initEnrol() {
  $('create-code').addEventListener('click', createCode);
  $('copy-command').addEventListener('click', copyCommand);
}
