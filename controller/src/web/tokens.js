// The API tokens section of the accounts page (admins): the tokens of
// upstream systems with their scopes and last use, creating one (its
// secret shown once, with a copy button) and revoking one. Names are
// shown as text, never as markup. accounts.js mounts it and hands it the
// list it loads.
//
// Stable hooks: [data-tokens-section]; [data-token-form] with
// [data-tok-name], [data-tok-scope="read|schedule|emergency"],
// [data-tok-create], [data-tok-error]; [data-token-secret-box] with
// [data-token-secret], [data-token-copy], [data-token-done]; rows
// [data-token-row="<name>"][data-revoked] with [data-token-revoke],
// [data-token-confirm-revoke], [data-token-row-error].
import { absTime } from './format.js';
import { t } from './i18n.js';
import { setText } from './state.js';
import { field, h, showError } from './ui.js';

const SCOPES = ['read', 'schedule', 'emergency'];

// The section: `send` (a request that never throws), `adminError` (a
// refusal in words) and `refresh` (reloads the page's lists) come from
// accounts.js. Returns { element, show(tokens), paint() }.
export function tokenSection({ send, adminError, refresh }) {
  const tk = { tokens: [], revoking: null, secret: null };
  const tokensBody = h('tbody');
  const tokensEmpty = h('p', { class: 'muted empty-note', i18n: 'tokEmpty', hidden: true });
  const tokensTable = h('table', { class: 'grid adm-grid' },
    h('thead', {}, h('tr', {}, ...['tokName', 'tokScopes', 'accCreated', 'tokLastUsed', 'accState', 'accActions'].map((k) => h('th', { i18n: k })))),
    tokensBody);
  const tokName = h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: false, dataset: { tokName: '' } });
  const scopeBoxes = SCOPES.map((s) => h('input', { type: 'checkbox', value: s, defaultChecked: s === 'read', dataset: { tokScope: s } }));
  const tokError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { tokError: '' } });
  const tokCreate = h('button', { type: 'submit', class: 'primary', i18n: 'tokCreate', dataset: { tokCreate: '' } });
  const secretBox = h('div', { class: 'adm-secret', role: 'status', hidden: true, dataset: { tokenSecretBox: '' } });
  const tokForm = h('form', { class: 'card form-grid adm-form', dataset: { tokenForm: '' } },
    h('h3', { i18n: 'tokNewHeading' }),
    h('p', { class: 'muted small fld wide', i18n: 'tokHelp' }),
    field('tokName', tokName),
    h('fieldset', { class: 'fld adm-scopes' }, h('legend', { class: 'fld-l', i18n: 'tokScopes' }),
      ...scopeBoxes.map((box) => h('label', { class: 'chk' }, box, h('span', { i18n: `tokScope_${box.value}` })))),
    h('div', { class: 'form-actions' }, tokCreate), tokError);
  tokForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(tokError, '');
    const scopes = scopeBoxes.filter((b) => b.checked).map((b) => b.value);
    if (!scopes.length) {
      showError(tokError, t('tokNoScope'));
      return;
    }
    tokCreate.disabled = true;
    const res = await send('POST', '/tokens', { name: tokName.value.trim(), scopes });
    tokCreate.disabled = false;
    if (res.status === 201 && res.data && typeof res.data.token === 'string') {
      tk.secret = { token: res.data.token, name: tokName.value.trim() };
      tokForm.reset();
      paintSecret();
      refresh();
    } else {
      showError(tokError, t('tokCreateFailed', adminError(res)));
    }
  });

  const element = h('section', { class: 'adm-sec', dataset: { tokensSection: '' } },
    h('h3', { i18n: 'tokHeading' }), secretBox, h('div', { class: 'card table-wrap' }, tokensTable, tokensEmpty), tokForm);

  function paintSecret() {
    secretBox.hidden = !tk.secret;
    if (!tk.secret) {
      secretBox.replaceChildren();
      return;
    }
    const copyStatus = h('span', { class: 'copy-status', role: 'status' });
    const code = h('code', { class: 'adm-secret-value', dataset: { tokenSecret: '' } }, tk.secret.token);
    secretBox.replaceChildren(
      h('p', { class: 'strong' }, t('tokSecretTitle', tk.secret.name)),
      h('p', { class: 'warn-text', dataset: { tokenSecretWarning: '' } }, t('tokSecretOnce')),
      h('pre', { class: 'cmd' }, code),
      h('div', { class: 'form-actions' },
        h('button', { type: 'button', class: 'plain-btn small', dataset: { tokenCopy: '' }, on: { click: () => copy(tk.secret.token, code, copyStatus) } }, t('tokCopy')),
        copyStatus,
        h('button', { type: 'button', class: 'primary small', dataset: { tokenDone: '' }, on: { click: () => { tk.secret = null; paintSecret(); } } }, t('tokDone'))),
    );
  }

  function paintTokens() {
    tokensEmpty.hidden = tk.tokens.length > 0;
    tokensBody.replaceChildren(...tk.tokens.map(tokenRow));
  }

  function tokenRow(token) {
    const revoked = token.revoked_at_ms !== null && token.revoked_at_ms !== undefined;
    const tr = h('tr', { dataset: { tokenRow: token.name, revoked: String(revoked) } });
    const rowError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { tokenRowError: '' } });
    const scopes = Array.isArray(token.scopes) ? token.scopes : [];
    tr.append(
      h('td', { class: 'mono' }, token.name),
      h('td', {}, ...scopes.map((s) => h('span', { class: `adm-scope sc-${s}` }, t(`tokScope_${s}`)))),
      h('td', { class: 'small' }, Number.isFinite(token.created_at_ms) ? absTime(token.created_at_ms) : '—'),
      h('td', { class: 'small' }, Number.isFinite(token.last_used_ms) ? absTime(token.last_used_ms) : t('tokNeverUsed')),
      h('td', {}, h('span', { class: `adm-state s-${revoked ? 'disabled' : 'active'}` }, revoked ? t('tokRevokedAt', absTime(token.revoked_at_ms)) : t('tokActive'))),
    );
    const actions = h('td', { class: 'actions' });
    if (!revoked && tk.revoking === token.id) {
      actions.append(
        h('p', { class: 'warn-text adm-confirm' }, t('tokConfirmRevoke', token.name)),
        h('button', { type: 'button', class: 'danger small', dataset: { tokenConfirmRevoke: '' }, on: { click: () => revoke(token, rowError) } }, t('tokRevoke')),
        h('button', { type: 'button', class: 'plain-btn small', on: { click: () => { tk.revoking = null; paintTokens(); } } }, t('cancel')));
    } else if (!revoked) {
      actions.append(h('button', { type: 'button', class: 'danger-plain small', dataset: { tokenRevoke: '' }, on: { click: () => { tk.revoking = token.id; paintTokens(); } } }, t('tokRevoke')));
    }
    actions.append(rowError);
    tr.append(actions);
    return tr;
  }

  async function revoke(token, rowError) {
    showError(rowError, '');
    const res = await send('DELETE', `/tokens/${token.id}`);
    if (res.status === 200) {
      tk.revoking = null;
      refresh();
    } else {
      showError(rowError, t('tokRevokeFailed', adminError(res)));
    }
  }

  function paint() {
    paintTokens();
    paintSecret();
  }

  return {
    element,
    show(tokens) {
      tk.tokens = Array.isArray(tokens) ? tokens : [];
      paint();
    },
    paint,
  };
}

// Copies the token to the clipboard; where the page may not, selects it
// so the operator can press Ctrl+C.
async function copy(text, node, status) {
  try {
    await navigator.clipboard.writeText(text);
    setText(status, t('tokCopied'));
  } catch (_) {
    const range = document.createRange();
    range.selectNodeContents(node);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    setText(status, t('tokCopyManually'));
  }
}
