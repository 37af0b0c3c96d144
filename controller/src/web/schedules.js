// The schedules page: every schedule with when it fires, whom it reaches
// and when it next plays; and the county's quiet hours.
import { apiMessage, getJSON, loadErrorText, sendJSON } from './api.js';
import { absTime } from './format.js';
import { t } from './i18n.js';
import { recurrenceText } from './recurrence.js';
import { setText } from './state.js';
import { h, showError } from './ui.js';

export function mountSchedules(root, query) {
  const saved = query && query.get('saved');
  const pg = { list: [], quiet: null };
  const listError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const tbody = h('tbody');
  const empty = h('p', { class: 'muted', i18n: 'schEmpty', hidden: true });
  const table = h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, ...['edName', 'schWhen', 'schTargets', 'edPriority', 'edVolume', 'schNext', 'schState'].map((k) => h('th', { i18n: k })))),
    tbody);

  // Quiet hours: the county's windows (township windows are kept as they are).
  const windows = h('ul', { class: 'quiet-list', dataset: { quietWindows: '' } });
  const qError = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { quietError: '' } });
  const qStatus = h('p', { class: 'form-ok', role: 'status', dataset: { quietStatus: '' } });
  const townshipNote = h('p', { class: 'muted small' });
  const addWindow = h('button', { type: 'button', class: 'plain-btn small', i18n: 'qAdd', dataset: { quietAdd: '' } });
  const qSave = h('button', { type: 'submit', class: 'primary', i18n: 'save', dataset: { quietSave: '' } });
  const qForm = h('form', { class: 'card quiet', dataset: { quietForm: '' } },
    h('h3', { i18n: 'qHeading' }), h('p', { class: 'muted small', i18n: 'qHelp' }), windows, townshipNote,
    h('div', { class: 'form-actions' }, addWindow, qSave, qStatus), qError);
  addWindow.addEventListener('click', () => windows.append(windowRow({ start: '22:00:00', end: '06:00:00' })));
  qForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const full = (v) => (v.length === 5 ? `${v}:00` : v);
    const county = [...windows.children].map((li) => {
      const [a, b] = li.querySelectorAll('input');
      return { start: full(a.value), end: full(b.value) };
    });
    const body = { ...(pg.quiet || {}), county };
    showError(qError, '');
    setText(qStatus, t('saving'));
    let res;
    try {
      res = await sendJSON('PUT', '/quiet-hours', body);
    } catch (e) {
      res = { status: 0, data: { message: loadErrorText(e) } };
    }
    if (res.status === 200) {
      pg.quiet = res.data;
      setText(qStatus, t('saved'));
      refresh();
    } else {
      setText(qStatus, '');
      showError(qError, t('qSaveFailed', apiMessage(res)));
    }
  });

  function windowRow(w) {
    const li = h('li', { dataset: { quietWindow: '' } },
      h('label', { class: 'fld inline' }, h('span', { class: 'fld-l', i18n: 'qFrom' }), h('input', { type: 'time', step: 1, required: true, value: w.start, dataset: { quietStart: '' } })),
      h('label', { class: 'fld inline' }, h('span', { class: 'fld-l', i18n: 'qTo' }), h('input', { type: 'time', step: 1, required: true, value: w.end, dataset: { quietEnd: '' } })));
    li.append(h('button', { type: 'button', class: 'plain-btn small', i18n: 'remove', on: { click: () => li.remove() } }));
    return li;
  }

  root.append(
    h('div', { class: 'pg-head' }, h('h2', { i18n: 'navSchedules' }),
      h('a', { href: '#/schedules/new', class: 'primary', i18n: 'schNew', dataset: { newSchedule: '' } }),
      h('a', { href: '#/week', class: 'plain-btn', i18n: 'navWeek' })),
    listError,
    h('div', { class: 'card table-wrap' }, table, empty),
    qForm,
  );

  function paint() {
    empty.hidden = pg.list.length > 0;
    tbody.replaceChildren(...pg.list.map((s) => {
      const tr = h('tr', { dataset: { scheduleRow: String(s.id), name: s.name, enabled: String(s.enabled !== false) } },
        h('td', {}, h('a', { href: `#/schedules/${s.id}`, class: 'strong', dataset: { scheduleLink: String(s.id) } }, s.name),
          s.description ? h('div', { class: 'muted small' }, s.description) : null),
        h('td', {}, recurrenceText(s.recurrence)),
        h('td', { class: 'num' }, t('pvVillages', s.village_count)),
        h('td', {}, h('span', { class: `prio p-${s.priority}` }, t(`prio_${s.priority}`))),
        h('td', { class: 'num' }, String(s.volume)),
        h('td', { class: 'small' }, Number.isFinite(s.next_start_ms) ? absTime(s.next_start_ms) : '—'),
        h('td', {}, t(s.enabled === false ? 'schDisabled' : 'schEnabled')));
      if (saved && String(s.id) === saved) tr.classList.add('just-saved');
      return tr;
    }));
    const tws = pg.quiet && Array.isArray(pg.quiet.townships) ? pg.quiet.townships.length : 0;
    setText(townshipNote, tws ? t('qTownships', tws) : '');
  }

  async function refresh() {
    try {
      const [list, quiet] = await Promise.all([getJSON('/schedules'), getJSON('/quiet-hours')]);
      pg.list = Array.isArray(list) ? list : [];
      pg.quiet = quiet && typeof quiet === 'object' ? quiet : null;
      showError(listError, '');
      if (!root.dataset.quietFilled) {
        root.dataset.quietFilled = 'true';
        windows.replaceChildren(...((pg.quiet && pg.quiet.county) || []).map(windowRow));
      }
      paint();
    } catch (e) {
      showError(listError, t('schLoadFailed', loadErrorText(e)));
    }
    root.dataset.loaded = 'true';
  }

  refresh();
  return { relabel: paint };
}
