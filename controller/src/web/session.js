// The operator's login session: who is logged in, the CSRF token every
// state-changing request carries (X-CSRF-Token; the session cookie itself
// is HttpOnly and never seen here), and the login form when there is no
// session or it has ended.
//
// Stable hooks: #login (the login dialog, hidden when not needed),
// [data-login-form], #login-name, #login-password, [data-login-error],
// #user-name (who is logged in; a button that opens the password dialog,
// password.js), #logout, body[data-role] (admin |
// operator | viewer | token: what the caller may do; the navigation links
// the role may not use are hidden — the server refuses them anyway).
import { t } from './i18n.js';

const API = '/api/v1';

export const session = { kind: null, user: null, csrf: null };

// While the login form is up: the promise every waiting request awaits.
let waiting = null;

// Adds the CSRF header to `headers` (an object) when there is a session.
export function withCsrf(headers) {
  if (session.csrf) headers['X-CSRF-Token'] = session.csrf;
  return headers;
}

// Finds out who is calling; shows the login form when nobody is.
export async function ensureSession() {
  let res;
  try {
    res = await fetch(`${API}/session`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch (_) {
    return; // the page's own loading shows the network error
  }
  if (res.ok) {
    adoptSession(await res.json().catch(() => ({})));
  } else if (res.status === 401) {
    await login();
  }
}

// Shows the login form (with `message`, e.g. why the session ended) and
// resolves once logged in.
export function login(message) {
  if (!waiting) {
    waiting = new Promise((resolve) => showForm(resolve, message));
  }
  return waiting;
}

// Logs out and starts the page again.
export async function logout() {
  try {
    await fetch(`${API}/session`, { method: 'DELETE', headers: withCsrf({ Accept: 'application/json' }) });
  } finally {
    location.reload();
  }
}

// Who is logged in, as the pages need it: {name, display_name, role,
// region_id, emergency, firstRun}. Before the first account exists the
// controller's own host has every right ("first-run mode"): an admin.
// null when nobody is (a token, or not yet known).
export function currentUser() {
  if (session.kind === 'local') {
    return { name: '', display_name: '', role: 'admin', region_id: null, emergency: true, firstRun: true };
  }
  const u = session.user;
  if (!u) return null;
  return {
    name: u.name,
    display_name: u.display_name || u.name,
    role: u.role,
    region_id: u.region_id ?? null,
    emergency: !!u.emergency,
    firstRun: false,
  };
}

// Whether the caller may manage accounts, tokens and read the audit log.
export function isAdmin() {
  const u = currentUser();
  return !!u && u.role === 'admin';
}

// Whether the caller may change anything (operators and admins).
export function mayChange() {
  const u = currentUser();
  return !!u && (u.role === 'admin' || u.role === 'operator');
}

// The navigation links only admins may use (the server's route table
// gives accounts, tokens and the audit log to admins alone).
const ADMIN_NAV = ['accounts', 'audit'];

// Takes on a session as `GET /session`, login and a password change
// answer it, and tells the page (the `dalaba:session` event on document).
export function adoptSession(body) {
  session.kind = body.kind || (body.user ? 'user' : null);
  session.user = body.user || null;
  session.csrf = body.csrf_token || null;
  paintUser();
  paintRole();
  document.dispatchEvent(new CustomEvent('dalaba:session'));
}

function paintRole() {
  const u = currentUser();
  const role = u ? u.role : session.kind || 'none';
  document.body.dataset.role = role;
  for (const key of ADMIN_NAV) {
    const link = document.querySelector(`[data-nav="${key}"]`);
    if (link) link.hidden = role !== 'admin';
  }
}

function paintUser() {
  const name = document.getElementById('user-name');
  const out = document.getElementById('logout');
  if (!name || !out) return;
  const u = session.user;
  name.textContent = u ? u.display_name || u.name : '';
  name.title = u ? `${u.name} · ${t('role_' + u.role)} · ${t('pwChangeHint')}` : '';
  name.hidden = !u;
  out.hidden = !u;
}

// A login refusal in the operator's words: the server's English for the
// refusals an operator meets is translated; anything else is shown as the
// server wrote it.
export function refusalText(status, message) {
  const m = typeof message === 'string' ? message : '';
  let x;
  if (/^wrong name or password/.test(m)) return t('loginWrong');
  if ((x = /locked for (\d+) more minute/.exec(m))) return t('loginLocked', Number(x[1]));
  if (/account is disabled/.test(m)) return t('loginDisabled');
  if ((x = /try again in (\d+) s/.exec(m))) return t('loginRateLimited', Number(x[1]));
  return m || `HTTP ${status}`;
}

// Builds (once) and shows the login dialog.
function showForm(resolve, message) {
  let dialog = document.getElementById('login');
  if (!dialog) {
    dialog = document.createElement('div');
    dialog.id = 'login';
    dialog.className = 'login';
    dialog.setAttribute('role', 'dialog');
    dialog.setAttribute('aria-modal', 'true');
    dialog.setAttribute('aria-labelledby', 'login-title');
    const form = document.createElement('form');
    form.dataset.loginForm = '';
    form.className = 'login-form';
    const title = document.createElement('h2');
    title.id = 'login-title';
    const field = (id, labelKey, type, autocomplete) => {
      const label = document.createElement('label');
      label.htmlFor = id;
      label.dataset.i18n = labelKey;
      const input = document.createElement('input');
      input.id = id;
      input.type = type;
      input.required = true;
      input.autocomplete = autocomplete;
      input.maxLength = type === 'password' ? 256 : 64;
      return [label, input];
    };
    const [nameLabel, name] = field('login-name', 'loginName', 'text', 'username');
    const [passLabel, pass] = field('login-password', 'loginPassword', 'password', 'current-password');
    const error = document.createElement('p');
    error.className = 'login-error';
    error.dataset.loginError = '';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    const submit = document.createElement('button');
    submit.type = 'submit';
    submit.className = 'primary';
    form.append(title, nameLabel, name, passLabel, pass, error, submit);
    dialog.append(form);
    document.body.append(dialog);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      submitLogin(form, name, pass, error, submit);
    });
  }
  const form = dialog.querySelector('[data-login-form]');
  dialog.querySelector('#login-title').textContent = t('loginTitle');
  dialog.querySelector('label[for="login-name"]').textContent = t('loginName');
  dialog.querySelector('label[for="login-password"]').textContent = t('loginPassword');
  form.querySelector('button[type="submit"]').textContent = t('loginSubmit');
  const error = dialog.querySelector('[data-login-error]');
  error.textContent = message || '';
  error.hidden = !message;
  form.resolve = resolve;
  dialog.hidden = false;
  document.body.dataset.login = 'true';
  dialog.querySelector('#login-name').focus();
}

async function submitLogin(form, name, pass, error, submit) {
  submit.disabled = true;
  error.hidden = true;
  try {
    const res = await fetch(`${API}/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ name: name.value.trim(), password: pass.value }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      error.textContent = t('loginFailed', refusalText(res.status, body.message));
      error.hidden = false;
      pass.select();
      return;
    }
    adoptSession(body);
    pass.value = '';
    document.getElementById('login').hidden = true;
    delete document.body.dataset.login;
    const resolve = form.resolve;
    waiting = null;
    if (resolve) resolve();
  } catch (_) {
    error.textContent = t('errNetwork');
    error.hidden = false;
  } finally {
    submit.disabled = false;
  }
}
