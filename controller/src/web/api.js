// Requests to the JSON API with a timeout, their errors as LoadError, and
// those errors in words.
import { t } from './i18n.js';
import { login, withCsrf } from './session.js';

export const API = '/api/v1';
const FETCH_TIMEOUT_MS = 15000;

export class LoadError extends Error {
  constructor(kind, status, detail) {
    super(detail || kind);
    this.kind = kind; // network | timeout | http | parse
    this.status = status || null;
    this.detail = detail || '';
  }
}

// A 401 means the session ended (or there is none): the login form, then
// the request once more.
export async function getJSON(path, retried) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  let res;
  try {
    res = await fetch(API + path, { headers: { Accept: 'application/json' }, cache: 'no-store', signal: ctl.signal });
  } catch (e) {
    clearTimeout(timer);
    throw new LoadError(e && e.name === 'AbortError' ? 'timeout' : 'network');
  }
  try {
    if (res.status === 401 && !retried) {
      clearTimeout(timer);
      await login(await messageOf(res));
      return getJSON(path, true);
    }
    if (!res.ok) {
      let detail = '';
      try {
        const body = await res.json();
        detail = inWords(body);
      } catch (_) {
        /* not JSON */
      }
      throw new LoadError('http', res.status, String(detail));
    }
    try {
      return await res.json();
    } catch (_) {
      throw new LoadError('parse', res.status);
    }
  } finally {
    clearTimeout(timer);
  }
}

// A request whose answer is looked at by status: { status, data }.
export async function sendJSON(method, path, body, retried) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  const init = { method, headers: withCsrf({ Accept: 'application/json' }), cache: 'no-store', signal: ctl.signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    let res;
    try {
      res = await fetch(API + path, init);
    } catch (e) {
      throw new LoadError(e && e.name === 'AbortError' ? 'timeout' : 'network');
    }
    if (res.status === 401 && !retried) {
      clearTimeout(timer);
      await login(await messageOf(res));
      return sendJSON(method, path, body, true);
    }
    let data = null;
    try {
      const text = await res.text();
      if (text) data = JSON.parse(text);
    } catch (_) {
      data = null;
    }
    return { status: res.status, data };
  } finally {
    clearTimeout(timer);
  }
}

// The message of an error answer, read from its body.
async function messageOf(res) {
  try {
    const body = await res.json();
    return (body && body.message) || '';
  } catch (_) {
    return '';
  }
}

// The message of an error answer from sendJSON.
export function apiMessage(res) {
  return inWords(res.data) || `HTTP ${res.status}`;
}

// A refusal that names its reason (`reason` and `params` in the error
// body) in the operator's words: the first of `prefixes` + reason that the
// dictionary has, given the params; '' when none has it.
export function explained(res, prefixes) {
  const d = res && res.data && typeof res.data === 'object' ? res.data : null;
  if (!d || typeof d.reason !== 'string') return '';
  const params = d.params && typeof d.params === 'object' ? d.params : {};
  for (const prefix of prefixes) {
    const key = `${prefix}${d.reason}`;
    const text = t(key, params);
    if (text !== key) return text;
  }
  return '';
}

// An error body's message in the operator's words where every page may
// meet it (a township account reaching outside its township); anything
// else as the server wrote it.
function inWords(body) {
  if (!body || typeof body !== 'object') return '';
  const message = String(body.message || body.error || '');
  if (body.error === 'outside_area') {
    const area = /limited to (.+?); /.exec(message);
    return t('errOutsideArea', area ? area[1] : '');
  }
  return message;
}

export function loadErrorText(e) {
  if (e instanceof LoadError) {
    if (e.kind === 'timeout') return t('errTimeout');
    if (e.kind === 'parse') return t('errParse');
    if (e.kind === 'http') return e.detail || `HTTP ${e.status}`;
    return t('errNetwork');
  }
  return String((e && e.message) || e);
}
