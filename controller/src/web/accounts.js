// The accounts page (#/accounts, admins): every operator account with its
// role, township and emergency right, creating one, changing what it may
// do, disabling and enabling it, resetting its password; and the API
// tokens of upstream systems (tokens.js). Names are shown as text, never
// as markup.
//
// Stable hooks: [data-accounts-admin-only] (the note a non-admin sees),
// [data-first-run]; [data-account-form] with [data-acc-name],
// [data-acc-display], [data-acc-role], [data-acc-region],
// [data-acc-emergency], [data-acc-password], [data-acc-confirm],
// [data-acc-create], [data-acc-error], [data-acc-status]; rows
// [data-account-row="<login>"][data-role][data-region][data-emergency]
// [data-state="active|disabled|locked"] with [data-acc-edit],
// [data-acc-reset], [data-acc-disable], [data-acc-enable],
// [data-acc-confirm-disable], [data-acc-edit-form] (its own role, region,
// emergency and display-name fields and [data-acc-save]),
// [data-acc-reset-form] ([data-acc-new-password], [data-acc-new-confirm],
// [data-acc-save]), [data-acc-row-error], [data-acc-pw-pending] (the
// password is still the one an admin chose).
import { apiMessage, getJSON, loadErrorText, sendJSON } from './api.js';
import { absTime } from './format.js';
import { t } from './i18n.js';
import { currentUser, isAdmin } from './session.js';
import { setText } from './state.js';
import { tokenSection } from './tokens.js';
import { field, h, regionIndex, showError } from './ui.js';

const ROLES = ['operator', 'viewer', 'admin'];
const MAX_SHOWN_MESSAGE = 300;

// A refusal from the accounts and tokens API in the operator's words: the
// server's English messages for what an operator can fix are translated;
// anything else is shown as the server wrote it (cut short: a refused
// name may be echoed back whole).
export function adminError(res) {
  const m = apiMessage(res);
  const rules = [
    [/display name must be 1 to (\d+)/, (x) => t('admErrDisplayName', x[1])],
    [/^account name [\s\S]* must be 1 to (\d+)/, (x) => t('admErrLoginName', x[1])],
    [/password must have at least (\d+)/, (x) => t('admErrPassword', x[1])],
    [/admin account is county-wide/, () => t('admErrRegionalAdmin')],
    [/only operators and admins may start emergencies/, () => t('admErrViewerEmergency')],
    [/an account named [\s\S]* already exists/, () => t('admErrNameTaken')],
    [/cannot take away your own admin role/, () => t('admErrSelf')],
    [/^token name [\s\S]* must be 1 to (\d+)/, (x) => t('admErrTokenName', x[1])],
    [/^unknown scope/, () => t('admErrScopes')],
    [/an API token named [\s\S]* already exists/, () => t('admErrTokenTaken')],
  ];
  for (const [re, say] of rules) {
    const x = re.exec(m);
    if (x) return say(x);
  }
  if (res.status === 403) return t('admErrForbidden');
  return m.length > MAX_SHOWN_MESSAGE ? `${m.slice(0, MAX_SHOWN_MESSAGE)}…` : m;
}

// A request that never throws: network trouble becomes an answer with status 0.
async function send(method, path, body) {
  try {
    return await sendJSON(method, path, body);
  } catch (e) {
    return { status: 0, data: { message: loadErrorText(e) } };
  }
}

export function mountAccounts(root) {
  const me = currentUser();
  root.append(h('div', { class: 'pg-head' }, h('h2', { i18n: 'navAccounts' })));
  if (!isAdmin()) {
    root.append(h('p', { class: 'card muted', i18n: 'accAdminOnly', dataset: { accountsAdminOnly: '' } }));
    root.dataset.loaded = 'true';
    return {};
  }
  const pg = { users: [], regions: regionIndex([]), editing: null };
  const loadError = h('p', { class: 'form-error', role: 'alert', hidden: true });

  // --- accounts ---------------------------------------------------------
  const usersBody = h('tbody');
  const usersEmpty = h('p', { class: 'muted empty-note', i18n: 'accEmpty', hidden: true });
  const usersTable = h('table', { class: 'grid adm-grid' },
    h('thead', {}, h('tr', {}, ...['accLogin', 'accDisplay', 'accRole', 'accArea', 'accEmergency', 'accState', 'accLastLogin', 'accActions'].map((k) => h('th', { i18n: k })))),
    usersBody);

  const f = {
    name: h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: false, dataset: { accName: '' } }),
    display: h('input', { type: 'text', autocomplete: 'off', dataset: { accDisplay: '' } }),
    role: roleSelect('operator', { accRole: '' }),
    region: h('select', { dataset: { accRegion: '' } }),
    emergency: h('input', { type: 'checkbox', dataset: { accEmergency: '' } }),
    password: h('input', { type: 'password', required: true, autocomplete: 'new-password', dataset: { accPassword: '' } }),
    confirm: h('input', { type: 'password', required: true, autocomplete: 'new-password', dataset: { accConfirm: '' } }),
  };
  const formError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { accError: '' } });
  const formStatus = h('p', { class: 'form-ok', role: 'status', dataset: { accStatus: '' } });
  const create = h('button', { type: 'submit', class: 'primary', i18n: 'accCreate', dataset: { accCreate: '' } });
  const form = h('form', { class: 'card form-grid adm-form', dataset: { accountForm: '' } },
    h('h3', { i18n: 'accNewHeading' }),
    field('accLogin', f.name), field('accDisplay', f.display), field('accRole', f.role), field('accArea', f.region),
    h('label', { class: 'chk' }, f.emergency, h('span', { i18n: 'accEmergencyLabel' })),
    field('accPassword', f.password), field('accPasswordConfirm', f.confirm),
    h('p', { class: 'muted small fld wide', i18n: 'accPasswordHelp' }),
    h('div', { class: 'form-actions' }, create, formStatus), formError);
  f.role.addEventListener('change', () => roleRules(f.role, f.region, f.emergency));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(formError, '');
    setText(formStatus, '');
    if (f.password.value !== f.confirm.value) {
      showError(formError, t('accPasswordsDiffer'));
      f.confirm.focus();
      return;
    }
    const body = {
      name: f.name.value.trim(),
      display_name: f.display.value.trim() || undefined,
      role: f.role.value,
      region_id: f.region.value ? Number(f.region.value) : null,
      emergency: f.emergency.checked,
      password: f.password.value,
    };
    create.disabled = true;
    setText(formStatus, t('saving'));
    const res = await send('POST', '/users', body);
    create.disabled = false;
    if (res.status === 201) {
      setText(formStatus, t('accCreatedOk', (res.data && res.data.display_name) || body.name));
      form.reset();
      roleRules(f.role, f.region, f.emergency);
      refresh();
    } else {
      setText(formStatus, '');
      showError(formError, t('accCreateFailed', adminError(res)));
    }
  });

  const tokens = tokenSection({ send, adminError, refresh });
  const firstRun = me && me.firstRun ? h('p', { class: 'card adm-note', i18n: 'accFirstRun', dataset: { firstRun: '' } }) : null;
  if (firstRun) root.append(firstRun);
  root.append(
    loadError,
    h('section', { class: 'adm-sec', dataset: { accountsSection: '' } },
      h('h3', { i18n: 'accHeading' }), h('div', { class: 'card table-wrap' }, usersTable, usersEmpty), form),
    tokens.element,
  );

  // --- painting ---------------------------------------------------------
  function areaName(regionId) {
    if (regionId === null || regionId === undefined) return t('accCounty');
    const r = pg.regions.byId.get(regionId);
    return r ? r.name : `#${regionId}`;
  }

  function userState(u) {
    if (u.disabled_at_ms !== null && u.disabled_at_ms !== undefined) return 'disabled';
    if (Number.isFinite(u.locked_until_ms) && u.locked_until_ms > Date.now()) return 'locked';
    return 'active';
  }

  function paintUsers() {
    usersEmpty.hidden = pg.users.length > 0;
    usersBody.replaceChildren(...pg.users.map(userRow));
  }

  function userRow(u) {
    const st = userState(u);
    const self = me && !me.firstRun && me.name === u.name;
    const tr = h('tr', { dataset: { accountRow: u.name, role: u.role, region: u.region_id === null ? '' : String(u.region_id), emergency: String(!!u.emergency), state: st } });
    const rowError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { accRowError: '' } });
    const stateText = st === 'locked' ? t('accLocked', absTime(u.locked_until_ms)) : t(`accState_${st}`);
    tr.append(
      h('td', { class: 'mono' }, u.name, self ? h('span', { class: 'muted small' }, ` ${t('accYou')}`) : null),
      h('td', { dataset: { cell: 'display' } }, u.display_name),
      h('td', {}, h('span', { class: `adm-role r-${u.role}` }, t(`role_${u.role}`))),
      h('td', {}, areaName(u.region_id)),
      h('td', {}, t(u.emergency ? 'accYes' : 'accNo')),
      h('td', {}, h('span', { class: `adm-state s-${st}` }, stateText),
        u.password_change_required ? h('span', { class: 'adm-state s-pw', dataset: { accPwPending: '' } }, t('accPwPending')) : null),
      h('td', { class: 'small', dataset: { cell: 'last-login' }, title: Number.isFinite(u.created_at_ms) ? t('accCreatedAt', absTime(u.created_at_ms)) : null },
        u.last_login_ms ? absTime(u.last_login_ms) : t('accNoLogin')),
    );
    const actions = h('td', { class: 'actions' });
    const editing = pg.editing && pg.editing.id === u.id ? pg.editing.kind : null;
    const close = () => { pg.editing = null; paintUsers(); };
    const open = (kind) => { pg.editing = { id: u.id, kind }; paintUsers(); };
    if (editing === 'edit') {
      actions.append(editForm(u, rowError, close));
    } else if (editing === 'reset') {
      actions.append(resetForm(u, rowError, close));
    } else if (editing === 'disable') {
      actions.append(
        h('p', { class: 'warn-text adm-confirm' }, t('accConfirmDisable', u.display_name)),
        h('button', { type: 'button', class: 'danger small', dataset: { accConfirmDisable: '' }, on: { click: () => patch(u, { disabled: true }, rowError) } }, t('accDisable')),
        h('button', { type: 'button', class: 'plain-btn small', on: { click: close } }, t('cancel')));
    } else {
      actions.append(
        h('button', { type: 'button', class: 'plain-btn small', dataset: { accEdit: '' }, on: { click: () => open('edit') } }, t('accChange')),
        h('button', { type: 'button', class: 'plain-btn small', dataset: { accReset: '' }, on: { click: () => open('reset') } }, t('accResetPassword')));
      if (st === 'disabled') {
        actions.append(h('button', { type: 'button', class: 'plain-btn small', dataset: { accEnable: '' }, on: { click: () => patch(u, { disabled: false }, rowError) } }, t('accEnable')));
      } else if (!self) {
        actions.append(h('button', { type: 'button', class: 'danger-plain small', dataset: { accDisable: '' }, on: { click: () => open('disable') } }, t('accDisable')));
      }
    }
    actions.append(rowError);
    tr.append(actions);
    return tr;
  }

  function editForm(u, rowError, close) {
    const display = h('input', { type: 'text', value: u.display_name, dataset: { accEditDisplay: '' } });
    const role = roleSelect(u.role, { accEditRole: '' });
    const region = h('select', { dataset: { accEditRegion: '' } });
    fillRegions(region, u.region_id);
    const emergency = h('input', { type: 'checkbox', checked: !!u.emergency, dataset: { accEditEmergency: '' } });
    roleRules(role, region, emergency);
    role.addEventListener('change', () => roleRules(role, region, emergency));
    const formEl = h('form', { class: 'adm-inline', dataset: { accEditForm: '' } },
      field('accDisplay', display), field('accRole', role), field('accArea', region),
      h('label', { class: 'chk' }, emergency, h('span', { i18n: 'accEmergencyLabel' })),
      h('div', { class: 'form-actions' },
        h('button', { type: 'submit', class: 'primary small', dataset: { accSave: '' } }, t('save')),
        h('button', { type: 'button', class: 'plain-btn small', on: { click: close } }, t('cancel'))));
    formEl.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const body = { role: role.value, region_id: region.value ? Number(region.value) : null, emergency: emergency.checked };
      if (display.value.trim() !== u.display_name) body.display_name = display.value.trim();
      patch(u, body, rowError);
    });
    return formEl;
  }

  function resetForm(u, rowError, close) {
    const pass = h('input', { type: 'password', required: true, autocomplete: 'new-password', dataset: { accNewPassword: '' } });
    const again = h('input', { type: 'password', required: true, autocomplete: 'new-password', dataset: { accNewConfirm: '' } });
    const formEl = h('form', { class: 'adm-inline', dataset: { accResetForm: '' } },
      h('p', { class: 'muted small' }, t('accResetHelp', u.display_name)),
      field('accNewPassword', pass), field('accPasswordConfirm', again),
      h('div', { class: 'form-actions' },
        h('button', { type: 'submit', class: 'primary small', dataset: { accSave: '' } }, t('accResetPassword')),
        h('button', { type: 'button', class: 'plain-btn small', on: { click: close } }, t('cancel'))));
    formEl.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (pass.value !== again.value) {
        showError(rowError, t('accPasswordsDiffer'));
        return;
      }
      patch(u, { password: pass.value }, rowError);
    });
    return formEl;
  }

  async function patch(u, body, rowError) {
    showError(rowError, '');
    const res = await send('PATCH', `/users/${u.id}`, body);
    if (res.status === 200) {
      pg.editing = null;
      refresh();
    } else {
      showError(rowError, t('accSaveFailed', adminError(res)));
    }
  }

  function fillRegions(select, selected) {
    select.replaceChildren(
      h('option', { value: '', i18n: 'accCounty' }),
      ...pg.regions.townships.map((tw) => h('option', { value: String(tw.id) }, tw.name)));
    select.value = selected === null || selected === undefined ? '' : String(selected);
  }

  function paint() {
    paintUsers();
    tokens.paint();
  }

  async function refresh() {
    try {
      const [users, tokenList, regions] = await Promise.all([getJSON('/users'), getJSON('/tokens'), getJSON('/regions')]);
      pg.users = Array.isArray(users) ? users : [];
      pg.regions = regionIndex(regions);
      const chosen = f.region.value;
      fillRegions(f.region, chosen ? Number(chosen) : null);
      roleRules(f.role, f.region, f.emergency);
      showError(loadError, '');
      paintUsers();
      tokens.show(tokenList);
    } catch (e) {
      showError(loadError, t('accLoadFailed', loadErrorText(e)));
    }
    root.dataset.loaded = 'true';
  }

  refresh();
  return { relabel: paint };
}

function roleSelect(selected, dataset) {
  const select = h('select', { dataset }, ...ROLES.map((r) => h('option', { value: r, i18n: `role_${r}` })));
  select.value = selected;
  return select;
}

// What a role allows: an admin is county-wide and may start emergencies;
// a viewer may not.
function roleRules(role, region, emergency) {
  const admin = role.value === 'admin';
  const viewer = role.value === 'viewer';
  if (admin) region.value = '';
  region.disabled = admin;
  if (admin) emergency.checked = true;
  if (viewer) emergency.checked = false;
  emergency.disabled = admin || viewer;
}

