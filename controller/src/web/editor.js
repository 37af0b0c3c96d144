// The schedule editor: name, playlist from the library, recurrence,
// validity, targets, priority and volume; a live preview (next
// occurrences, villages reached, conflicts) asked of the server while the
// operator types, before anything is saved; save and delete with the
// server's refusal shown beside the form.
import { apiMessage, explained, getJSON, loadErrorText, sendJSON } from './api.js';
import { absTime } from './format.js';
import { t } from './i18n.js';
import { categoryLabel, loadLibrary } from './library.js';
import { recurrenceForm } from './recurrence.js';
import { setText } from './state.js';
import { targetsForm } from './targets.js';
import { clockDuration, debounce, field, h, regionIndex, showError } from './ui.js';

const PREVIEW_DEBOUNCE_MS = 400;
export const PRIORITIES = ['background', 'scheduled', 'paging', 'emergency'];

// A refused schedule in the operator's words, by the server's reason and
// its values; anything else (a network fault, a refusal of the caller's
// area) as apiMessage words it.
function scheduleError(res) {
  return explained(res, ['schErr_']) || apiMessage(res);
}

export function mountEditor(root, id) {
  const ed = { id, lib: { categories: [], items: [] }, preview: null, previewError: '', seq: 0, left: false };
  const heading = h('h2', { i18n: id === null ? 'edNew' : 'edEdit' });
  const formError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { formError: '' } });
  const status = h('p', { class: 'form-ok', role: 'status', dataset: { formStatus: '' } });
  root.append(h('div', { class: 'pg-head' }, heading, h('a', { href: '#/schedules', class: 'plain-btn', i18n: 'edBack' })),
    h('p', { class: 'muted', i18n: 'loading' }));

  const debounced = debounce(runPreview, PREVIEW_DEBOUNCE_MS);
  const changed = () => {
    if (ed.form) debounced();
  };

  async function load() {
    try {
      const [regions, lib, stored] = await Promise.all([
        getJSON('/regions'),
        loadLibrary(),
        id === null ? Promise.resolve(null) : getJSON(`/schedules/${id}`),
      ]);
      ed.lib = lib;
      build(regionIndex(regions), stored);
      runPreview();
    } catch (e) {
      root.replaceChildren(root.firstChild, h('p', { class: 'form-error', role: 'alert' }, t('edLoadFailed', loadErrorText(e))));
    }
    root.dataset.loaded = 'true';
  }

  function build(idx, stored) {
    const name = h('input', { type: 'text', required: true, maxLength: 200, dataset: { edName: '' } });
    const description = h('input', { type: 'text', maxLength: 2000, dataset: { edDescription: '' } });
    // Playlist.
    const playlist = h('ol', { class: 'playlist', dataset: { playlist: '' } });
    const addSelect = h('select', { dataset: { playlistAdd: '' } });
    const addButton = h('button', { type: 'button', class: 'plain-btn small', i18n: 'edAddItem', dataset: { playlistAddButton: '' } });
    const gap = h('input', { type: 'number', min: 0, max: 600, step: 1, value: 0, dataset: { edGap: '' } });
    addButton.addEventListener('click', () => {
      if (addSelect.value) {
        playlist.append(entryRow(Number(addSelect.value), 0));
        changed();
      }
    });
    const rec = recurrenceForm(changed);
    const validFrom = h('input', { type: 'date', dataset: { edValidFrom: '' } });
    const validUntil = h('input', { type: 'date', dataset: { edValidUntil: '' } });
    const maxDelay = h('input', { type: 'number', min: 0, max: 1440, value: 10, dataset: { edMaxDelay: '' } });
    const targets = targetsForm(idx, changed);
    const priority = h('select', { dataset: { edPriority: '' } }, ...PRIORITIES.map((p) => h('option', { value: p, i18n: `prio_${p}` })));
    priority.value = 'scheduled';
    const volume = h('input', { type: 'range', min: 0, max: 100, value: 80, dataset: { edVolume: '' } });
    const volumeText = h('output', { class: 'num' }, '80');
    volume.addEventListener('input', () => setText(volumeText, volume.value));
    const enabled = h('input', { type: 'checkbox', checked: true, dataset: { edEnabled: '' } });
    const save = h('button', { type: 'submit', class: 'primary', i18n: 'save', dataset: { save: '' } });
    const del = h('button', { type: 'button', class: 'danger-plain', i18n: 'delete', hidden: id === null, dataset: { delete: '' } });
    const confirmDel = h('span', { class: 'confirm-inline', hidden: true },
      h('span', { class: 'warn-text', i18n: 'edConfirmDelete' }),
      h('button', { type: 'button', class: 'danger small', i18n: 'delete', dataset: { confirmDelete: '' }, on: { click: remove } }),
      h('button', { type: 'button', class: 'plain-btn small', i18n: 'cancel', on: { click: () => { confirmDel.hidden = true; del.hidden = false; } } }));
    del.addEventListener('click', () => {
      del.hidden = true;
      confirmDel.hidden = false;
    });

    const form = h('form', { class: 'ed-form', novalidate: true, dataset: { scheduleForm: '' } },
      h('fieldset', { class: 'card form-grid' }, h('legend', { i18n: 'edBasics' }),
        field('edName', name, 'fld wide'), field('edDescription', description, 'fld wide'),
        field('edPriority', priority), h('label', { class: 'fld' }, h('span', { class: 'fld-l', i18n: 'edVolume' }), h('span', { class: 'row' }, volume, volumeText)),
        h('label', { class: 'chk' }, enabled, h('span', { i18n: 'edEnabled' }))),
      h('fieldset', { class: 'card' }, h('legend', { i18n: 'edPlaylist' }), playlist,
        h('p', { class: 'muted small', i18n: 'edNoItems', hidden: ed.lib.items.length > 0 }),
        h('div', { class: 'row' }, addSelect, addButton), field('edGap', gap, 'fld inline')),
      rec.node,
      h('fieldset', { class: 'card form-grid' }, h('legend', { i18n: 'edValidity' }),
        field('edValidFrom', validFrom), field('edValidUntil', validUntil), field('edMaxDelay', maxDelay)),
      targets.node,
      h('div', { class: 'form-actions sticky-actions' }, save, del, confirmDel, status),
      formError);
    form.addEventListener('input', changed);
    form.addEventListener('change', changed);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      submit();
    });

    // The preview beside the form.
    const pv = {
      state: h('p', { class: 'muted', role: 'status' }),
      cron: h('p', { class: 'mono small', dataset: { previewCron: '' } }),
      villages: h('p', { class: 'strong', dataset: { previewVillages: '' } }),
      next: h('ol', { class: 'occ', dataset: { previewNext: '' } }),
      conflicts: h('ul', { class: 'conflicts', dataset: { previewConflicts: '' } }),
    };
    const aside = h('aside', { class: 'card preview', dataset: { preview: '', state: 'idle' }, 'aria-live': 'polite' },
      h('h3', { i18n: 'pvHeading' }), pv.state, pv.villages, pv.cron,
      h('h4', { i18n: 'pvNext' }), pv.next, h('h4', { i18n: 'pvConflicts' }), pv.conflicts);

    root.replaceChildren(root.firstChild, h('div', { class: 'ed-layout' }, form, aside));
    ed.form = { name, description, playlist, addSelect, gap, rec, validFrom, validUntil, maxDelay, targets, priority, volume, volumeText, enabled, save, pv, aside, formError, status };
    paintAddSelect();
    if (stored) fill(stored);
  }

  function entryRow(itemId, repeats) {
    const item = ed.lib.items.find((i) => i.id === itemId);
    const label = h('span', { class: 'pl-title' });
    const rep = h('input', { type: 'number', min: 0, max: 100, value: repeats || 0, class: 'small-num', dataset: { playlistRepeats: '' } });
    const li = h('li', { dataset: { playlistRow: String(itemId) } }, label,
      h('label', { class: 'fld inline' }, h('span', { class: 'fld-l', i18n: 'edRepeats' }), rep),
      h('button', { type: 'button', class: 'plain-btn small', 'aria-label': '↑', on: { click: () => { if (li.previousSibling) li.parentNode.insertBefore(li, li.previousSibling); changed(); } } }, '↑'),
      h('button', { type: 'button', class: 'plain-btn small', i18n: 'remove', on: { click: () => { li.remove(); changed(); } } }));
    li.paintLabel = () => {
      const text = item ? `${item.title} · ${categoryLabel(ed.lib.categories, item.category)} · ${clockDuration(item.duration_ms)}` : t('edMissingItem', itemId);
      setText(label, text);
    };
    li.paintLabel();
    return li;
  }

  function paintAddSelect() {
    const f = ed.form;
    const v = f.addSelect.value;
    f.addSelect.replaceChildren(h('option', { value: '' }, t('edPickItem')),
      ...ed.lib.items.map((i) => h('option', { value: i.id }, `${i.title} (${clockDuration(i.duration_ms)})`)));
    if (v) f.addSelect.value = v;
  }

  function fill(s) {
    const f = ed.form;
    f.name.value = s.name || '';
    f.description.value = s.description || '';
    f.playlist.replaceChildren(...(s.playlist || []).map((e) => entryRow(e.item_id, e.repeats)));
    f.gap.value = Math.round((s.gap_ms || 0) / 1000);
    f.rec.set(s.recurrence);
    f.validFrom.value = s.valid_from || '';
    f.validUntil.value = s.valid_until || '';
    f.maxDelay.value = Math.round((s.max_delay_ms === undefined ? 600000 : s.max_delay_ms) / 60000);
    f.targets.set(s.targets);
    f.priority.value = s.priority || 'scheduled';
    f.volume.value = s.volume === undefined ? 80 : s.volume;
    setText(f.volumeText, f.volume.value);
    f.enabled.checked = s.enabled !== false;
  }

  // The schedule as the API takes it.
  function spec() {
    const f = ed.form;
    const body = {
      name: f.name.value,
      description: f.description.value,
      playlist: [...f.playlist.children].map((li) => ({
        item_id: Number(li.dataset.playlistRow),
        repeats: Math.max(0, Number(li.querySelector('[data-playlist-repeats]').value) || 0),
      })),
      gap_ms: Math.max(0, Math.round(Number(f.gap.value) * 1000) || 0),
      recurrence: f.rec.value(),
      max_delay_ms: Math.max(0, Math.round(Number(f.maxDelay.value) * 60000) || 0),
      targets: f.targets.value(),
      priority: f.priority.value,
      volume: Number(f.volume.value),
      enabled: f.enabled.checked,
    };
    if (f.validFrom.value) body.valid_from = f.validFrom.value;
    if (f.validUntil.value) body.valid_until = f.validUntil.value;
    return body;
  }

  async function runPreview() {
    if (!ed.form || ed.left) return;
    const seq = ++ed.seq;
    ed.form.aside.dataset.state = 'loading';
    setText(ed.form.pv.state, t('pvChecking'));
    let res;
    try {
      res = await sendJSON('POST', '/schedules/preview', { id: ed.id === null ? undefined : ed.id, schedule: spec() });
    } catch (e) {
      res = { status: 0, data: { message: loadErrorText(e) } };
    }
    if (seq !== ed.seq || ed.left) return;
    if (res.status === 200 && res.data) {
      ed.preview = res.data;
      ed.previewError = '';
      showError(ed.form.formError, '');
    } else {
      ed.preview = null;
      ed.previewError = scheduleError(res);
      showError(ed.form.formError, t('edInvalid', ed.previewError));
    }
    paintPreview();
  }

  function paintPreview() {
    const { pv, aside } = ed.form;
    const p = ed.preview;
    if (!p) {
      aside.dataset.state = ed.previewError ? 'error' : 'idle';
      setText(pv.state, ed.previewError ? t('pvInvalid') : '');
      for (const n of [pv.cron, pv.villages]) setText(n, '');
      pv.next.replaceChildren();
      pv.conflicts.replaceChildren();
      return;
    }
    aside.dataset.state = 'ok';
    setText(pv.state, t('pvValid'));
    setText(pv.villages, t('pvVillages', p.village_count));
    setText(pv.cron, Array.isArray(p.cron) && p.cron.length ? `cron: ${p.cron.join(' | ')}` : '');
    const next = Array.isArray(p.next) ? p.next : [];
    pv.next.replaceChildren(...next.map((o) => h('li', { dataset: { occurrence: String(o.start_ms) } }, o.local || absTime(o.start_ms))));
    if (next.length === 0) pv.next.append(h('li', { class: 'muted' }, t('pvNone')));
    const conflicts = Array.isArray(p.conflicts) ? p.conflicts : [];
    pv.conflicts.replaceChildren(...conflicts.map((c) => h('li', {
      class: `conflict ${c.role === 'loses' ? 'c-loses' : 'c-wins'}`,
      dataset: { conflict: String(c.other_id), role: c.role, outcome: c.outcome },
    }, t(`pvConflict_${c.role}_${c.outcome}`, c.other_name, c.occurrences, c.villages, absTime(c.first_ms)))));
    if (conflicts.length === 0) pv.conflicts.append(h('li', { class: 'muted', dataset: { noConflicts: '' } }, t('pvNoConflicts')));
  }

  async function submit() {
    const f = ed.form;
    debounced.cancel();
    showError(f.formError, '');
    setText(f.status, t('saving'));
    f.save.disabled = true;
    let res;
    try {
      res = await sendJSON(ed.id === null ? 'POST' : 'PUT', ed.id === null ? '/schedules' : `/schedules/${ed.id}`, spec());
    } catch (e) {
      res = { status: 0, data: { message: loadErrorText(e) } };
    }
    f.save.disabled = false;
    if (res.status >= 200 && res.status < 300 && res.data) {
      setText(f.status, t('saved'));
      location.hash = `#/schedules?saved=${res.data.id}`;
    } else {
      setText(f.status, '');
      showError(f.formError, t('edSaveFailed', scheduleError(res)));
    }
  }

  async function remove() {
    let res;
    try {
      res = await sendJSON('DELETE', `/schedules/${ed.id}`);
    } catch (e) {
      res = { status: 0, data: { message: loadErrorText(e) } };
    }
    if (res.status >= 200 && res.status < 300) location.hash = '#/schedules';
    else showError(ed.form.formError, t('edDeleteFailed', apiMessage(res)));
  }

  load();
  return {
    relabel() {
      if (!ed.form) return;
      paintAddSelect();
      for (const li of ed.form.playlist.children) li.paintLabel();
      ed.form.rec.relabel();
      ed.form.targets.relabel();
      if (ed.previewError) showError(ed.form.formError, t('edInvalid', ed.previewError));
      paintPreview();
    },
    leave() {
      ed.left = true;
      debounced.cancel();
    },
  };
}
