// The audio library page: the items with a category filter, a preview
// player, uploading a file (with its progress), typing a notice for text
// to speech, editing and deleting an item. Every refusal of the server is
// shown with its message.
import { API, apiMessage, explained, getJSON, loadErrorText, sendJSON } from './api.js';
import { absTime, formatBytes } from './format.js';
import { t } from './i18n.js';
import { session } from './session.js';
import { setText, state } from './state.js';
import { clockDuration, field, h, showError } from './ui.js';

// The categories and items of the open page, shared with the editor.
export async function loadLibrary() {
  const [categories, items] = await Promise.all([getJSON('/library/categories'), getJSON('/library')]);
  return { categories: Array.isArray(categories) ? categories : [], items: Array.isArray(items) ? items : [] };
}

export function categoryLabel(categories, key) {
  const c = categories.find((x) => x.key === key);
  if (!c) return key;
  return state.lang === 'en' ? c.label_en : c.label_zh;
}

export function mountLibrary(root) {
  const lib = { categories: [], items: [], filter: '', editing: null, confirming: null, playing: null };

  const filter = h('select', { dataset: { libFilter: '' }, on: { change: () => { lib.filter = filter.value; paintList(); } } });
  const count = h('span', { class: 'muted' });
  const listError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'grid lib-table' },
    h('thead', {}, h('tr', {}, ...['libTitle', 'libCategory', 'libSource', 'libDuration', 'libLoudness', 'libSize', 'libAdded', 'libActions'].map((k) => h('th', { i18n: k })))),
    tbody,
  );
  const empty = h('p', { class: 'muted', i18n: 'libEmpty', hidden: true });

  // The preview player.
  const player = h('audio', { controls: true, preload: 'none', dataset: { libPlayer: '' } });
  const nowTitle = h('span', { class: 'player-title', dataset: { libPlaying: '' } });
  const variant = h('select', { dataset: { libVariant: '' }, on: { change: () => lib.playing && play(lib.playing, true) } },
    h('option', { value: 'original', i18n: 'libOriginal' }),
    h('option', { value: 'distribution', i18n: 'libDistribution' }));
  const playerBox = h('div', { class: 'player', hidden: true }, h('span', { class: 'fld-l', i18n: 'libPreview' }), nowTitle, field('libVariantLabel', variant, 'fld inline'), player);

  // Uploading.
  const file = h('input', { type: 'file', accept: 'audio/*,.mp3,.m4a,.aac,.flac,.ogg,.opus,.wav', required: true, dataset: { libFile: '' } });
  const upTitle = h('input', { type: 'text', required: true, maxLength: 200, dataset: { libUploadTitle: '' } });
  const upCategory = h('select', { required: true, dataset: { libUploadCategory: '' } });
  const upDescription = h('input', { type: 'text', maxLength: 2000 });
  const progress = h('progress', { max: 100, value: 0, dataset: { uploadProgress: '', percent: '0' } });
  const progressText = h('span', { class: 'progress-text', dataset: { uploadPercent: '' } });
  const progressBox = h('div', { class: 'progress', hidden: true }, progress, progressText);
  const upStatus = h('p', { class: 'form-ok', role: 'status', dataset: { uploadStatus: '' } });
  const upError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { uploadError: '' } });
  const upButton = h('button', { type: 'submit', class: 'primary', i18n: 'libUpload', dataset: { libUploadSubmit: '' } });
  file.addEventListener('change', () => {
    const f = file.files && file.files[0];
    if (f && !upTitle.value) upTitle.value = f.name.replace(/\.[^.]+$/, '');
  });
  const upForm = h('form', { class: 'card form-grid', dataset: { libUploadForm: '' } },
    h('h3', { i18n: 'libUploadHeading' }),
    field('libFileLabel', file), field('libTitle', upTitle), field('libCategory', upCategory), field('libDescription', upDescription),
    h('div', { class: 'form-actions' }, upButton, progressBox), upStatus, upError);
  upForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    upload();
  });

  // Text to speech.
  const ttsText = h('textarea', { rows: 4, required: true, maxLength: 5000, dataset: { ttsText: '' } });
  const ttsTitle = h('input', { type: 'text', required: true, maxLength: 200, dataset: { ttsTitle: '' } });
  const ttsCategory = h('select', { required: true, dataset: { ttsCategory: '' } });
  const ttsStatus = h('p', { class: 'form-ok', role: 'status' });
  const ttsError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { ttsError: '' } });
  const ttsButton = h('button', { type: 'submit', class: 'primary', i18n: 'libSpeak', dataset: { ttsSubmit: '' } });
  const ttsForm = h('form', { class: 'card form-grid', dataset: { ttsForm: '' } },
    h('h3', { i18n: 'libTtsHeading' }),
    field('libTtsText', ttsText, 'fld wide'), field('libTitle', ttsTitle), field('libCategory', ttsCategory),
    h('div', { class: 'form-actions' }, ttsButton), ttsStatus, ttsError);
  ttsForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(ttsError, '');
    setText(ttsStatus, t('libSpeaking'));
    ttsButton.disabled = true;
    try {
      const res = await sendJSON('POST', '/library/tts', { text: ttsText.value, title: ttsTitle.value, category: ttsCategory.value });
      if (res.status >= 200 && res.status < 300) {
        setText(ttsStatus, t('libAdded_', ttsTitle.value));
        ttsText.value = '';
        ttsTitle.value = '';
        await refresh();
      } else {
        setText(ttsStatus, '');
        showError(ttsError, libraryError(res));
      }
    } catch (e) {
      setText(ttsStatus, '');
      showError(ttsError, loadErrorText(e));
    } finally {
      ttsButton.disabled = false;
    }
  });

  // A custom category.
  const catKey = h('input', { type: 'text', required: true, maxLength: 32, pattern: '[a-z0-9-]+', placeholder: 'fire-safety', dataset: { catKey: '' } });
  const catZh = h('input', { type: 'text', required: true, maxLength: 64, dataset: { catZh: '' } });
  const catEn = h('input', { type: 'text', required: true, maxLength: 64, dataset: { catEn: '' } });
  const catError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { catError: '' } });
  const catStatus = h('p', { class: 'form-ok', role: 'status' });
  const catForm = h('form', { class: 'form-grid', dataset: { catForm: '' } },
    field('libCatKey', catKey), field('libCatZh', catZh), field('libCatEn', catEn),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary', i18n: 'libCatAdd', dataset: { catSubmit: '' } }), catStatus),
    catError);
  catForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(catError, '');
    setText(catStatus, '');
    let res;
    try {
      res = await sendJSON('POST', '/library/categories', { key: catKey.value.trim(), label_zh: catZh.value, label_en: catEn.value });
    } catch (e) {
      res = { status: 0, data: { message: loadErrorText(e) } };
    }
    if (res.status >= 200 && res.status < 300) {
      setText(catStatus, t('saved'));
      catForm.reset();
      await refresh();
    } else showError(catError, apiMessage(res));
  });
  const catBox = h('details', { class: 'card' }, h('summary', { class: 'strong', i18n: 'libCatHeading' }), catForm);

  root.append(
    h('div', { class: 'pg-head' }, h('h2', { i18n: 'navLibrary' }), field('libFilterLabel', filter, 'fld inline'), count),
    listError,
    playerBox,
    h('div', { class: 'card table-wrap' }, table, empty),
    h('div', { class: 'two-col' }, upForm, ttsForm),
    catBox,
  );

  function paintCategories() {
    const keep = (sel, withAll) => {
      const v = sel.value;
      const opts = lib.categories.map((c) => h('option', { value: c.key }, categoryLabel(lib.categories, c.key)));
      sel.replaceChildren(...(withAll ? [h('option', { value: '' }, t('libAllCategories'))] : []), ...opts);
      if ([...sel.options].some((o) => o.value === v)) sel.value = v;
    };
    keep(filter, true);
    keep(upCategory, false);
    keep(ttsCategory, false);
  }

  function paintList() {
    const shown = lib.items.filter((i) => !lib.filter || i.category === lib.filter);
    setText(count, t('libCount', shown.length, lib.items.length));
    empty.hidden = shown.length > 0;
    tbody.replaceChildren(...shown.map(row));
    if (lib.playing) setText(nowTitle, lib.playing.title);
  }

  function row(item) {
    const tr = h('tr', { dataset: { libItem: String(item.id), title: item.title, category: item.category } });
    if (lib.editing === item.id) return editRow(tr, item);
    const loud = Number.isFinite(item.loudness_lufs) ? `${item.loudness_lufs.toFixed(1)} LUFS` : '—';
    const gain = Number.isFinite(item.gain_db) ? `${item.gain_db > 0 ? '+' : ''}${item.gain_db.toFixed(1)} dB` : '—';
    const rowError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { libRowError: String(item.id) } });
    const actions = h('td', { class: 'actions' });
    if (lib.confirming === item.id) {
      actions.append(
        h('span', { class: 'warn-text' }, t('libConfirmDelete')),
        h('button', { type: 'button', class: 'danger small', dataset: { libConfirmDelete: String(item.id) }, on: { click: () => remove(item, rowError) } }, t('delete')),
        h('button', { type: 'button', class: 'plain-btn small', on: { click: () => { lib.confirming = null; paintList(); } } }, t('cancel')),
      );
    } else {
      actions.append(
        h('button', { type: 'button', class: 'plain-btn small', dataset: { libPlay: String(item.id) }, on: { click: () => play(item, false) } }, t('libPlay')),
        h('button', { type: 'button', class: 'plain-btn small', dataset: { libEdit: String(item.id) }, on: { click: () => { lib.editing = item.id; paintList(); } } }, t('edit')),
        h('button', { type: 'button', class: 'danger-plain small', dataset: { libDelete: String(item.id) }, on: { click: () => { lib.confirming = item.id; paintList(); } } }, t('delete')),
      );
    }
    actions.append(rowError);
    tr.append(
      h('td', {}, h('div', { class: 'strong' }, item.title), item.description ? h('div', { class: 'muted small' }, item.description) : null),
      h('td', {}, h('span', { class: 'cat', dataset: { cat: item.category } }, categoryLabel(lib.categories, item.category))),
      h('td', {}, t(item.source === 'tts' ? 'libSourceTts' : 'libSourceUpload')),
      h('td', { class: 'num' }, clockDuration(item.duration_ms)),
      h('td', { class: 'num', title: Number.isFinite(item.true_peak_dbtp) ? `${item.true_peak_dbtp.toFixed(1)} dBTP` : '' }, `${loud} · ${t('libGain')} ${gain}`),
      h('td', { class: 'num' }, formatBytes(item.original && item.original.size_bytes), item.original ? h('span', { class: 'muted small' }, ` ${item.original.format}`) : null),
      h('td', { class: 'small' }, Number.isFinite(item.created_at_ms) ? absTime(item.created_at_ms) : '—'),
      actions,
    );
    return tr;
  }

  function editRow(tr, item) {
    const title = h('input', { type: 'text', value: item.title, maxLength: 200, dataset: { libEditTitle: '' } });
    const description = h('input', { type: 'text', value: item.description || '', maxLength: 2000 });
    const category = h('select', {}, ...lib.categories.map((c) => h('option', { value: c.key }, categoryLabel(lib.categories, c.key))));
    category.value = item.category;
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { libRowError: String(item.id) } });
    const save = async () => {
      const res = await sendJSON('PATCH', `/library/${item.id}`, { title: title.value, description: description.value, category: category.value }).catch((e) => ({ status: 0, data: { message: loadErrorText(e) } }));
      if (res.status >= 200 && res.status < 300) {
        lib.editing = null;
        await refresh();
      } else showError(err, apiMessage(res));
    };
    tr.append(h('td', { colSpan: 8 }, h('div', { class: 'inline-form' },
      field('libTitle', title), field('libCategory', category), field('libDescription', description),
      h('button', { type: 'button', class: 'primary small', dataset: { libSave: String(item.id) }, on: { click: save } }, t('save')),
      h('button', { type: 'button', class: 'plain-btn small', on: { click: () => { lib.editing = null; paintList(); } } }, t('cancel'))), err));
    return tr;
  }

  async function remove(item, errNode) {
    let res;
    try {
      res = await sendJSON('DELETE', `/library/${item.id}`);
    } catch (e) {
      showError(errNode, loadErrorText(e));
      return;
    }
    if (res.status >= 200 && res.status < 300) {
      lib.confirming = null;
      if (lib.playing && lib.playing.id === item.id) {
        player.pause();
        playerBox.hidden = true;
        lib.playing = null;
      }
      await refresh();
    } else {
      lib.confirming = null;
      paintList();
      const fresh = root.querySelector(`[data-lib-row-error="${item.id}"]`);
      if (fresh) showError(fresh, t('libDeleteFailed', apiMessage(res)));
    }
  }

  function play(item, keepPosition) {
    lib.playing = item;
    const at = keepPosition ? player.currentTime : 0;
    player.src = `${API}/library/${item.id}/audio?variant=${variant.value}`;
    setText(nowTitle, item.title);
    playerBox.hidden = false;
    player.dataset.itemId = String(item.id);
    if (at) player.currentTime = at;
    player.play().catch(() => {
      /* autoplay may be refused; the controls are there */
    });
  }

  // Streams the file as the request body; the progress bar follows the
  // bytes sent.
  function upload() {
    const f = file.files && file.files[0];
    showError(upError, '');
    setText(upStatus, '');
    if (!f) {
      showError(upError, t('libChooseFile'));
      return;
    }
    const q = new URLSearchParams({ title: upTitle.value, category: upCategory.value, filename: f.name });
    if (upDescription.value) q.set('description', upDescription.value);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${API}/library?${q}`);
    xhr.setRequestHeader('Content-Type', f.type || 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    if (session.csrf) xhr.setRequestHeader('X-CSRF-Token', session.csrf);
    const setProgress = (pct) => {
      progress.value = pct;
      progress.dataset.percent = String(pct);
      setText(progressText, `${pct}%`);
    };
    setProgress(0);
    progressBox.hidden = false;
    upButton.disabled = true;
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable && ev.total > 0) setProgress(Math.floor((ev.loaded / ev.total) * 100));
    };
    xhr.upload.onload = () => {
      setProgress(100);
      setText(upStatus, t('libProcessing'));
    };
    xhr.onerror = () => {
      upButton.disabled = false;
      setText(upStatus, '');
      showError(upError, t('errNetwork'));
    };
    xhr.onload = async () => {
      upButton.disabled = false;
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (_) {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        setProgress(100);
        setText(upStatus, t('libAdded_', (body && body.title) || upTitle.value));
        upStatus.dataset.itemId = body && body.id !== undefined ? String(body.id) : '';
        upForm.reset();
        await refresh();
      } else {
        setText(upStatus, '');
        showError(upError, libraryError({ status: xhr.status, data: body }));
      }
    };
    xhr.send(f);
  }

  async function refresh() {
    try {
      const data = await loadLibrary();
      lib.categories = data.categories;
      lib.items = data.items;
      showError(listError, '');
      paintCategories();
      paintList();
    } catch (e) {
      showError(listError, t('libLoadFailed', loadErrorText(e)));
    }
    root.dataset.loaded = 'true';
  }

  refresh();
  return {
    relabel() {
      paintCategories();
      paintList();
    },
    leave() {
      player.pause();
    },
  };
}

// The refusals the library names by code (an upload, a text to speak), in
// the operator's words; the server's own account follows for the
// technician. Anything else as the server wrote it.
const LIBRARY_ERRORS = {
  too_large: 'libErr_too_large',
  duplicate: 'libErr_duplicate',
  empty_file: 'libErr_empty_file',
  not_audio: 'libErr_not_audio',
  corrupt_audio: 'libErr_corrupt_audio',
  truncated_audio: 'libErr_truncated_audio',
  audio_too_long: 'libErr_audio_too_long',
  no_audio: 'libErr_no_audio',
  silent_audio: 'libErr_silent_audio',
  bad_text: 'libErr_bad_text',
  tts_unavailable: 'libErr_tts_unavailable',
  tts_timeout: 'libErr_tts_timeout',
  tts_failed: 'libErr_tts_failed',
};

export function libraryError(res) {
  // A refused title, description or category, by its reason.
  const words = explained(res, ['libErr_']);
  if (words) return words;
  const code = res.data && typeof res.data === 'object' ? res.data.error : null;
  const key = Object.hasOwn(LIBRARY_ERRORS, code) ? LIBRARY_ERRORS[code] : null;
  const detail = apiMessage(res);
  return key ? `${t(key)} ${t('libErrDetail', detail)}` : detail;
}
