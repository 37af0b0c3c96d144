// Which villages hear a schedule, picked from the region tree: the whole
// county, townships, single villages, and village tags.
import { t, tagLabel } from './i18n.js';
import { h } from './ui.js';

// The targets fieldset for the regions `idx` (ui.js regionIndex).
export function targetsForm(idx, onChange) {
  const county = h('input', { type: 'checkbox', dataset: { targetCounty: '' } });
  const townships = h('ul', { class: 'tgt-tree' });
  for (const tw of idx.townships) {
    const villages = idx.villagesOf.get(tw.id) || [];
    const box = h('input', { type: 'checkbox', value: tw.id, dataset: { targetTownship: String(tw.id) } });
    const list = h('ul', { class: 'tgt-villages', hidden: true },
      ...villages.map((v) => h('li', {}, h('label', { class: 'chk' },
        h('input', { type: 'checkbox', value: v.id, dataset: { targetVillage: String(v.id) } }), h('span', {}, v.name)))));
    const open = h('button', { type: 'button', class: 'plain-btn small', 'aria-expanded': 'false', dataset: { targetOpen: String(tw.id) } }, `▸ ${villages.length}`);
    open.addEventListener('click', () => {
      list.hidden = !list.hidden;
      open.setAttribute('aria-expanded', String(!list.hidden));
      open.textContent = `${list.hidden ? '▸' : '▾'} ${villages.length}`;
    });
    townships.append(h('li', {}, h('div', { class: 'tgt-tw' }, h('label', { class: 'chk' }, box, h('span', { class: 'strong' }, tw.name)), open), list));
  }
  const tags = h('div', { class: 'days' }, ...idx.tags.map((tag) => h('label', { class: 'chk' },
    h('input', { type: 'checkbox', value: tag, dataset: { targetTag: tag } }), h('span', { class: 'tag', dataset: { tag } }, tagLabel(tag)))));
  const node = h('fieldset', { class: 'card tgt' }, h('legend', { i18n: 'tgtHeading' }),
    h('label', { class: 'chk strong' }, county, h('span', { i18n: 'tgtCounty' })),
    townships,
    idx.tags.length ? h('div', { class: 'fld wide' }, h('span', { class: 'fld-l', i18n: 'tgtTags' }), tags) : null);

  function paint() {
    // The whole county covers everything; a township covers its villages.
    const all = county.checked;
    for (const box of townships.querySelectorAll('[data-target-township]')) {
      box.disabled = all;
      const li = box.closest('li');
      for (const v of li.querySelectorAll('[data-target-village]')) v.disabled = all || box.checked;
    }
    for (const box of tags.querySelectorAll('input')) box.disabled = all;
  }
  node.addEventListener('change', () => {
    paint();
    onChange();
  });

  const checked = (sel) => [...node.querySelectorAll(`${sel}:checked`)];
  function value() {
    if (county.checked) return { county: true, townships: [], villages: [], tags: [] };
    const tws = checked('[data-target-township]').map((b) => Number(b.value));
    const villages = checked('[data-target-village]')
      .filter((b) => !tws.includes(Number(b.closest('li').parentNode.closest('li').querySelector('[data-target-township]').value)))
      .map((b) => Number(b.value));
    return { county: false, townships: tws, villages, tags: checked('[data-target-tag]').map((b) => b.value) };
  }

  function set(tg) {
    const g = tg && typeof tg === 'object' ? tg : {};
    county.checked = g.county === true;
    const has = (list, v) => Array.isArray(list) && list.map(String).includes(String(v));
    for (const b of node.querySelectorAll('[data-target-township]')) b.checked = has(g.townships, b.value);
    for (const b of node.querySelectorAll('[data-target-village]')) {
      b.checked = has(g.villages, b.value);
      if (b.checked) b.closest('ul').hidden = false;
    }
    for (const b of node.querySelectorAll('[data-target-tag]')) b.checked = has(g.tags, b.value);
    paint();
  }

  function relabel() {
    for (const s of tags.querySelectorAll('[data-tag]')) s.textContent = tagLabel(s.dataset.tag);
  }

  if (idx.townships.length === 0) node.append(h('p', { class: 'muted' }, t('noRegions')));
  return { node, value, set, relabel };
}
