// Removing an agent from the village panel: asked first in a dialog, then
// deleted through the API and dropped from the page.
import { apiMessage, loadErrorText, sendJSON } from './api.js';
import { t } from './i18n.js';
import { $, panel, setText, state } from './state.js';
import { requestLoad } from './sync.js';
import { paintCard, paintCounts } from './tree.js';

let removing = null; // agent id being asked about

function askRemove(id) {
  const a = state.agents.get(id);
  if (!a) return;
  const text = t('removeText', a.hostname || a.id, a.id);
  const dlg = $('confirm-remove');
  if (typeof dlg.showModal !== 'function') {
    // eslint-disable-next-line no-alert
    if (window.confirm(text)) removeAgent(id, null);
    return;
  }
  removing = id;
  setText($('confirm-title'), t('removeTitle'));
  setText($('confirm-text'), text);
  $('confirm-error').hidden = true;
  setText($('confirm-error'), '');
  const ok = $('confirm-ok');
  ok.disabled = false;
  setText(ok, t('removeAgent'));
  setText($('confirm-cancel'), t('cancel'));
  dlg.showModal();
  $('confirm-cancel').focus();
}

async function removeAgent(id, dlg) {
  const ok = $('confirm-ok');
  const error = $('confirm-error');
  ok.disabled = true;
  setText(ok, t('removing'));
  let message = null;
  try {
    const res = await sendJSON('DELETE', `/agents/${encodeURIComponent(id)}`);
    if (res.status !== 204) message = apiMessage(res);
  } catch (e) {
    message = loadErrorText(e);
  }
  ok.disabled = false;
  setText(ok, t('removeAgent'));
  if (message !== null) {
    if (dlg && dlg.open) {
      setText(error, t('removeFailed', message));
      error.hidden = false;
    } else {
      const e = $('enrol-error');
      setText(e, t('removeFailed', message));
      e.hidden = false;
    }
    return;
  }
  if (dlg && dlg.open) dlg.close('removed');
  removing = null;
  forgetAgent(id);
  if (panel.villageId !== null) $('vp-name').focus({ preventScroll: true });
  // The list is the truth; an event may have raced the removal.
  requestLoad(false);
}

function forgetAgent(id) {
  const a = state.agents.get(id);
  if (!a) return;
  state.agents.delete(id);
  const set = state.agentsByVillage.get(a.village_id);
  if (set) set.delete(id);
  if (state.built) {
    if (state.cards.has(a.village_id)) paintCard(a.village_id, true);
    paintCounts();
  }
}

export function initRemove() {
  $('vp-agents').addEventListener('click', (ev) => {
    const b = ev.target && ev.target.closest ? ev.target.closest('[data-remove-agent]') : null;
    if (b) askRemove(b.dataset.removeAgent);
  });
  const dlg = $('confirm-remove');
  $('confirm-ok').addEventListener('click', () => {
    if (removing !== null) removeAgent(removing, dlg);
  });
  $('confirm-cancel').addEventListener('click', () => dlg.close('cancel'));
  dlg.addEventListener('close', () => {
    removing = null;
  });
}
