// Changing one's own password: the dialog the name in the header opens,
// and the notice shown while the password is still one an admin chose
// (a new account, a reset: `user.password_change_required`).
//
// Stable hooks: #user-name and #password-notice-change open
// #password-dialog; #pw-current, #pw-new, #pw-again, #pw-submit,
// #pw-error; #password-notice[data-kind="required" | "done"].
import { apiMessage, loadErrorText, sendJSON } from './api.js';
import { t } from './i18n.js';
import { adoptSession, refusalText, session } from './session.js';
import { $, setText } from './state.js';

// As the controller's `accounts::MIN_PASSWORD_CHARS` and
// `MAX_PASSWORD_BYTES` (UTF-8: a Chinese character is three).
const MIN_CHARS = 10;
const MAX_BYTES = 256;
// How long the "changed" notice stays.
const DONE_MS = 8000;

let doneTimer = null;

export function initPassword() {
  $('user-name').addEventListener('click', open);
  $('password-notice-change').addEventListener('click', open);
  $('pw-cancel').addEventListener('click', () => $('password-dialog').close());
  $('password-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });
  document.addEventListener('dalaba:session', paintNotice);
}

// The notice: asked to change while the admin's password stands.
function paintNotice() {
  const notice = $('password-notice');
  if (notice.dataset.kind === 'done') return;
  const required = !!(session.user && session.user.password_change_required);
  showNotice(required ? 'required' : null);
}

function showNotice(kind) {
  const notice = $('password-notice');
  const text = $('password-notice-text');
  clearTimeout(doneTimer);
  if (!kind) {
    notice.hidden = true;
    delete notice.dataset.kind;
    return;
  }
  notice.dataset.kind = kind;
  // data-i18n: a language switch words it again.
  text.dataset.i18n = kind === 'required' ? 'pwRequired' : 'pwDone';
  setText(text, t(text.dataset.i18n));
  $('password-notice-change').hidden = kind !== 'required';
  notice.hidden = false;
  if (kind === 'done') {
    doneTimer = setTimeout(() => showNotice(null), DONE_MS);
  }
}

function open() {
  const dlg = $('password-dialog');
  const u = session.user;
  if (!u || typeof dlg.showModal !== 'function') return;
  for (const id of ['pw-current', 'pw-new', 'pw-again']) $(id).value = '';
  setText($('pw-who'), `${u.display_name || u.name} (${u.name})`);
  const error = $('pw-error');
  error.hidden = true;
  setText(error, '');
  $('pw-submit').disabled = false;
  dlg.showModal();
  $('pw-current').focus();
}

// What is wrong with the form before asking the controller, or null.
function formProblem(current, next, again) {
  if (!current) return t('pwNeedCurrent');
  if ([...next].length < MIN_CHARS) return t('pwTooShort', MIN_CHARS);
  if (new TextEncoder().encode(next).length > MAX_BYTES) return t('pwTooLong', MAX_BYTES);
  if (next !== again) return t('pwMismatch');
  if (next === current) return t('pwSame');
  return null;
}

async function submit() {
  const [current, next, again] = ['pw-current', 'pw-new', 'pw-again'].map((id) => $(id).value);
  const error = $('pw-error');
  const fail = (message, focus) => {
    setText(error, message);
    error.hidden = false;
    if (focus) $(focus).select();
  };
  error.hidden = true;
  const problem = formProblem(current, next, again);
  if (problem) {
    fail(problem, current ? 'pw-new' : 'pw-current');
    return;
  }
  const button = $('pw-submit');
  button.disabled = true;
  try {
    const res = await sendJSON('POST', '/session/password', { current_password: current, new_password: next });
    if (res.status === 200 && res.data) {
      adoptSession(res.data);
      $('password-dialog').close();
      showNotice('done');
      return;
    }
    if (res.data && res.data.error === 'wrong_password') {
      fail(t('pwWrong'), 'pw-current');
      return;
    }
    const message = res.data && res.data.error === 'locked' ? refusalText(res.status, res.data.message) : apiMessage(res);
    fail(t('pwFailed', message));
  } catch (e) {
    fail(t('pwFailed', loadErrorText(e)));
  } finally {
    button.disabled = false;
  }
}
