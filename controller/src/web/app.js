// Dalaba county dashboard: the region tree with every village's live state.
//
// Plain ES2020, no build step, no external resources. All data is written
// with textContent (names come from a CSV import and may contain markup).
// Counts are computed here from /regions and /agents so they always agree
// with the live updates from the event stream.
//
// Stable hooks (tests and operators' scripts rely on them; keep them):
//   body[data-ready="true"]             first load done
//   #live[data-connected]               event stream state
//   #count-villages, #count-online, #count-offline, #count-none
//   [data-village-code="<12 digits>"]   a village card (role="button",
//                                       focusable); data-status is
//                                       online | offline | none
//   #village-panel                      the village panel: hidden when
//                                       closed, data-village-code when open
//   #village-panel [data-agent-id]      an agent row, data-online true|false
//   [data-remove-agent="<id>"]          its remove button (asks first;
//                                       #confirm-ok confirms)
//   #create-code, #enrol-code, #enrol-command
//   window.__errors                     script errors seen on the page
'use strict';

// Records uncaught errors so that a test (or an operator with the console
// closed) can see them; it only records.
window.__errors = window.__errors || [];
window.addEventListener('error', (ev) => {
  window.__errors.push(String((ev && (ev.message || ev.error)) || 'error'));
});
window.addEventListener('unhandledrejection', (ev) => {
  const r = ev && ev.reason;
  window.__errors.push(`unhandled rejection: ${String((r && r.message) || r)}`);
});

(() => {
  const API = '/api/v1';
  const TZ = 'Asia/Shanghai';
  const RELATIVE_REFRESH_MS = 15000;
  const FETCH_TIMEOUT_MS = 15000;
  const STREAM_WAIT_MS = 1500;
  const LANG_KEY = 'dalaba.lang';
  const COLLAPSED_KEY = 'dalaba.collapsed';

  // Every visible string. Values are strings or functions of their arguments.
  const I18N = {
    zh: {
      htmlLang: 'zh-CN',
      title: '大喇叭 Dalaba — 县级应急广播',
      skip: '跳到村列表',
      totals: '全县统计',
      villages: '村',
      online: '在线',
      offline: '离线',
      none: '未接入',
      all: '全部',
      liveOn: '实时',
      liveOff: '未连接',
      liveOnTitle: '事件流已连接，状态实时更新',
      liveOffTitle: '事件流已断开，正在自动重连；显示的状态可能不是最新的',
      langAria: 'Switch to English',
      langButton: 'EN / 中文',
      retryNow: '立即重试',
      townships: '乡镇概况',
      searchLabel: '搜索村名或代码',
      searchPlaceholder: '搜索村名或 12 位代码',
      statusFilter: '按状态筛选',
      expandAll: '全部展开',
      collapseAll: '全部收起',
      loading: '正在加载…',
      treeHeading: '村列表',
      unreachable: '无法连接控制器',
      serverError: '控制器返回错误',
      errWrap: (head, detail) => `${head}（${detail}）`,
      errNetwork: '网络错误',
      errTimeout: '请求超时',
      errParse: '响应格式不正确',
      retryIn: (s) => `${s} 秒后重试`,
      retrying: '正在重试…',
      staleNote: '当前显示的是上次加载的数据。',
      resultCount: (n, total) => (n === total ? `共 ${total} 个村` : `显示 ${n} / ${total} 个村`),
      noMatch: '没有符合条件的村。',
      noRegions: '尚未导入行政区划，请先导入村目录。',
      emptyTownship: '本乡镇暂无村。',
      seen: '最近联系',
      seenNow: '现在',
      never: '从未',
      justNow: '刚刚',
      minAgo: (n) => `${n} 分钟前`,
      hourAgo: (n) => `${n} 小时前`,
      dayAgo: (n) => `${n} 天前`,
      amp: '功放',
      amp_on: '开',
      amp_off: '关',
      amp_unknown: '未知',
      amp_fault: '故障',
      playing: '正在播放',
      nothingPlaying: '—',
      code: '代码',
      tz: '北京时间',
      lastSeenAt: (s) => `最近联系：${s}`,
      connectedSinceAt: (s) => `本次连接：${s} 起`,
      playingSince: (s) => `开始播放：${s}`,
      agentsN: (n) => `${n} 台终端`,
      agentsTitle: (list) => `终端：${list}`,
      agentItem: (name, st) => `${name}（${st}）`,
      listSep: '、',
      noAgentTitle: '尚未接入终端',
      twAria: (name, v, on, off, none) => `${name}：${v} 个村，在线 ${on}，离线 ${off}，未接入 ${none}`,
      twSummary: (v) => `${v} 个村`,
      legendTotal: '/村数',
      onlyTownship: (name) => `仅 ${name} ✕`,
      clearTownship: '显示全部乡镇',
      noTownship: '未归属乡镇',
      tags: { 'flood-risk': '防汛重点', hill: '山区' },
      close: '关闭',
      township: '乡镇',
      coords: '坐标',
      coordsValue: (lat, lon) => `纬度 ${lat}，经度 ${lon}`,
      tagsLabel: '标签',
      agentsHeading: (n) => `终端（${n}）`,
      noAgentsYet: '本村尚未接入终端。',
      f_id: '终端编号',
      f_version: '版本',
      f_since: '本次连接',
      f_seen: '最近联系',
      f_peer: '地址',
      f_hw: '硬件',
      f_audio: '音频输出',
      f_driver: '功放驱动',
      f_offset: '时钟偏差',
      f_disk: '磁盘剩余',
      f_cache: '缓存',
      f_amp: '功放',
      f_playing: '正在播放',
      timeAndAgo: (abs, rel) => `${abs} · ${rel}`,
      offsetWarn: '与控制器时钟相差超过 1 秒，定时广播可能不准',
      noStatusYet: '尚未收到状态报告。',
      offlineNoStatus: '离线：没有实时状态。',
      removeAgent: '移除终端',
      removeTitle: '移除终端？',
      removeText: (name, id) => `确定移除终端“${name}”（${id}）吗？它的密钥立即失效，连接会被断开；要再接入，需要新的接入码。`,
      cancel: '取消',
      removing: '正在移除…',
      removeFailed: (msg) => `移除失败：${msg}`,
      enrolHeading: '接入新终端',
      enrolNote: '接入码只能使用一次，过期作废。',
      createCode: '生成接入码',
      creatingCode: '正在生成…',
      createFailed: (msg) => `生成接入码失败：${msg}`,
      codeLabel: '接入码',
      expiresAt: (abs, left) => `有效期至 ${abs}，还剩 ${left}`,
      expiredAt: (abs) => `已于 ${abs} 过期，请重新生成`,
      lessThanMinute: '不到 1 分钟',
      nMinutes: (n) => `${n} 分钟`,
      nHours: (n) => `${n} 小时`,
      nDays: (n) => `${n} 天`,
      commandLabel: '技术员在树莓派上运行：',
      thenRun: '接入成功后启动终端：',
      copy: '复制命令',
      copied: '已复制到剪贴板',
      copySelect: '已选中命令，请按 Ctrl+C 复制',
      newAgent: (name, st) => `本村已接入新终端：${name}（${st}）`,
    },
    en: {
      htmlLang: 'en',
      title: 'Dalaba — county broadcast',
      skip: 'Skip to the village list',
      totals: 'County totals',
      villages: 'villages',
      online: 'online',
      offline: 'offline',
      none: 'no agent',
      all: 'all',
      liveOn: 'live',
      liveOff: 'disconnected',
      liveOnTitle: 'Event stream connected: states update live',
      liveOffTitle: 'Event stream disconnected, reconnecting automatically; states shown may be out of date',
      langAria: '切换到中文',
      langButton: 'EN / 中文',
      retryNow: 'Retry now',
      townships: 'Townships',
      searchLabel: 'Search village name or code',
      searchPlaceholder: 'Search village name or 12-digit code',
      statusFilter: 'Filter by status',
      expandAll: 'Expand all',
      collapseAll: 'Collapse all',
      loading: 'Loading…',
      treeHeading: 'Villages',
      unreachable: 'Cannot reach the controller',
      serverError: 'The controller returned an error',
      errWrap: (head, detail) => `${head} (${detail})`,
      errNetwork: 'network error',
      errTimeout: 'request timed out',
      errParse: 'malformed response',
      retryIn: (s) => `retrying in ${s} s`,
      retrying: 'retrying…',
      staleNote: 'Showing the data from the last successful load.',
      resultCount: (n, total) => (n === total ? `${total} villages` : `Showing ${n} of ${total} villages`),
      noMatch: 'No village matches the filter.',
      noRegions: 'No regions yet: import the village directory first.',
      emptyTownship: 'No villages in this township.',
      seen: 'Seen',
      seenNow: 'now',
      never: 'never',
      justNow: 'just now',
      minAgo: (n) => `${n} min ago`,
      hourAgo: (n) => `${n} h ago`,
      dayAgo: (n) => `${n} d ago`,
      amp: 'Amp',
      amp_on: 'on',
      amp_off: 'off',
      amp_unknown: 'unknown',
      amp_fault: 'fault',
      playing: 'Now playing',
      nothingPlaying: '—',
      code: 'Code',
      tz: 'Beijing time',
      lastSeenAt: (s) => `Last seen: ${s}`,
      connectedSinceAt: (s) => `Connected since ${s}`,
      playingSince: (s) => `Playing since ${s}`,
      agentsN: (n) => `${n} agents`,
      agentsTitle: (list) => `Agents: ${list}`,
      agentItem: (name, st) => `${name} (${st})`,
      listSep: ', ',
      noAgentTitle: 'No agent enrolled yet',
      twAria: (name, v, on, off, none) => `${name}: ${v} villages, ${on} online, ${off} offline, ${none} without agent`,
      twSummary: (v) => `${v} ${v === 1 ? 'village' : 'villages'}`,
      legendTotal: '/total',
      onlyTownship: (name) => `Only ${name} ✕`,
      clearTownship: 'Show all townships',
      noTownship: 'No township',
      tags: { 'flood-risk': 'flood risk', hill: 'hill' },
      close: 'Close',
      township: 'Township',
      coords: 'Coordinates',
      coordsValue: (lat, lon) => `lat ${lat}, lon ${lon}`,
      tagsLabel: 'Tags',
      agentsHeading: (n) => `Agents (${n})`,
      noAgentsYet: 'No agent enrolled in this village yet.',
      f_id: 'Agent id',
      f_version: 'Version',
      f_since: 'Connected since',
      f_seen: 'Last seen',
      f_peer: 'Address',
      f_hw: 'Hardware',
      f_audio: 'Audio output',
      f_driver: 'Amplifier driver',
      f_offset: 'Clock offset',
      f_disk: 'Disk free',
      f_cache: 'Cache',
      f_amp: 'Amplifier',
      f_playing: 'Now playing',
      timeAndAgo: (abs, rel) => `${abs} · ${rel}`,
      offsetWarn: 'More than 1 s off the controller clock: scheduled broadcasts may be late or early',
      noStatusYet: 'No status report yet.',
      offlineNoStatus: 'Offline: no live status.',
      removeAgent: 'Remove agent',
      removeTitle: 'Remove this agent?',
      removeText: (name, id) => `Remove agent “${name}” (${id})? Its secret stops working at once and its link is closed; enrolling it again needs a new code.`,
      cancel: 'Cancel',
      removing: 'Removing…',
      removeFailed: (msg) => `Could not remove the agent: ${msg}`,
      enrolHeading: 'Enrol a new board',
      enrolNote: 'A code works once, then expires.',
      createCode: 'Create enrolment code',
      creatingCode: 'Creating…',
      createFailed: (msg) => `Could not create a code: ${msg}`,
      codeLabel: 'Enrolment code',
      expiresAt: (abs, left) => `Valid until ${abs}, ${left} left`,
      expiredAt: (abs) => `Expired at ${abs}: create a new one`,
      lessThanMinute: 'less than 1 min',
      nMinutes: (n) => `${n} min`,
      nHours: (n) => `${n} h`,
      nDays: (n) => `${n} d`,
      commandLabel: 'The technician runs on the board:',
      thenRun: 'Once enrolled, start the agent:',
      copy: 'Copy command',
      copied: 'Copied to the clipboard',
      copySelect: 'Command selected: press Ctrl+C to copy',
      newAgent: (name, st) => `A new agent joined this village: ${name} (${st})`,
    },
  };

  // ---- State -------------------------------------------------------------

  const state = {
    lang: 'zh',
    built: false,
    regions: new Map(), // id -> region
    villages: [], // village regions, by code
    townships: [], // {id, key, name, code, villages: [region]}
    townshipOf: new Map(), // village id -> township key
    agents: new Map(), // agent id -> agent
    agentsByVillage: new Map(), // village id -> Set(agent id)
    info: new Map(), // village id -> computed info
    cards: new Map(), // village id -> card elements
    twEls: new Map(), // township key -> {section, chip, ...}
    filter: { text: '', status: 'all', township: null },
    collapsed: new Set(), // township codes
  };

  const $ = (id) => document.getElementById(id);

  function t(key, ...args) {
    const dict = I18N[state.lang] || I18N.zh;
    const v = key in dict ? dict[key] : I18N.zh[key];
    if (typeof v === 'function') return v(...args);
    return v === undefined ? key : v;
  }

  function tagLabel(tag) {
    const tags = (I18N[state.lang] || I18N.zh).tags;
    return Object.prototype.hasOwnProperty.call(tags, tag) ? tags[tag] : tag;
  }

  // Creates an element; text is always set through textContent.
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function setText(node, text) {
    const s = String(text);
    if (node.textContent !== s) node.textContent = s;
  }

  function setAttr(node, name, value) {
    if (value === null || value === undefined || value === '') {
      if (node.hasAttribute(name)) node.removeAttribute(name);
    } else if (node.getAttribute(name) !== String(value)) {
      node.setAttribute(name, String(value));
    }
  }

  // ---- Time --------------------------------------------------------------

  // Absolute times: "2024-05-01 14:03:22 (北京时间)", the same digits in both
  // languages, always in China's time zone whatever the browser's.
  let absFormat = null;
  function absTime(ms) {
    if (!absFormat) {
      absFormat = new Intl.DateTimeFormat('en-CA', {
        timeZone: TZ,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
      });
    }
    const p = {};
    for (const part of absFormat.formatToParts(new Date(ms))) p[part.type] = part.value;
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} (${t('tz')})`;
  }

  function relTime(ms) {
    const sec = Math.max(0, (Date.now() - ms) / 1000);
    if (sec < 60) return t('justNow');
    const min = Math.floor(sec / 60);
    if (min < 60) return t('minAgo', min);
    const hours = Math.floor(min / 60);
    if (hours < 48) return t('hourAgo', hours);
    return t('dayAgo', Math.floor(hours / 24));
  }

  function parseTime(s) {
    if (typeof s !== 'string') return null;
    const ms = Date.parse(s);
    return Number.isFinite(ms) ? ms : null;
  }

  // ---- Village state -----------------------------------------------------

  const AMP_STATES = new Set(['on', 'off', 'unknown', 'fault']);

  // What a village shows, from all its agents: online if any is online; the
  // details come from the freshest agent (online ones first).
  function computeInfo(villageId) {
    const ids = state.agentsByVillage.get(villageId);
    const agents = ids ? [...ids].map((id) => state.agents.get(id)).filter(Boolean) : [];
    if (agents.length === 0) {
      return { status: 'none', agents: [], lastSeen: null, connectedSince: null, amp: null, title: null, since: null };
    }
    const seen = (a) => parseTime(a.last_seen) || 0;
    const online = agents.filter((a) => a.online === true);
    const pool = (online.length ? online : agents).slice().sort((a, b) => seen(b) - seen(a));
    const withStatus = pool.find((a) => a.status && typeof a.status === 'object');
    const status = withStatus ? withStatus.status : null;
    let lastSeen = null;
    for (const a of agents) {
      const s = parseTime(a.last_seen);
      if (s !== null && (lastSeen === null || s > lastSeen)) lastSeen = s;
    }
    let connectedSince = null;
    for (const a of online) {
      const s = parseTime(a.connected_since);
      if (s !== null && (connectedSince === null || s < connectedSince)) connectedSince = s;
    }
    let amp = 'unknown';
    if (status && AMP_STATES.has(status.amplifier)) amp = status.amplifier;
    const np = status && status.now_playing && typeof status.now_playing === 'object' ? status.now_playing : null;
    return {
      status: online.length ? 'online' : 'offline',
      agents: agents
        .slice()
        .sort((a, b) => Number(b.online === true) - Number(a.online === true) || seen(b) - seen(a))
        .map((a) => ({ name: String(a.hostname || a.id), online: a.online === true })),
      lastSeen,
      connectedSince,
      amp,
      title: np && np.title ? String(np.title) : null,
      since: np && Number.isFinite(np.since_ms) ? np.since_ms : null,
    };
  }

  // ---- Building the tree (only when the regions change) -----------------

  function setRegions(list) {
    if (!Array.isArray(list)) throw new LoadError('parse');
    const regions = new Map();
    for (const r of list) {
      if (r && typeof r === 'object' && r.id !== undefined) regions.set(r.id, r);
    }
    const byCode = (a, b) => String(a.code).localeCompare(String(b.code));
    const counties = list.filter((r) => r && r.level === 'county').sort(byCode);
    const townshipRegions = list.filter((r) => r && r.level === 'township').sort(byCode);
    const villages = list.filter((r) => r && r.level === 'village').sort(byCode);

    const townships = townshipRegions.map((r) => ({ key: String(r.id), id: r.id, name: r.name, code: r.code, villages: [] }));
    const byKey = new Map(townships.map((tw) => [tw.key, tw]));
    let orphans = null;
    const townshipOf = new Map();
    for (const v of villages) {
      let tw = byKey.get(String(v.parent_id));
      if (!tw) {
        if (!orphans) orphans = { key: 'none', id: null, name: null, code: '', villages: [] };
        tw = orphans;
      }
      tw.villages.push(v);
      townshipOf.set(v.id, tw.key);
    }
    if (orphans) townships.push(orphans);

    state.regions = regions;
    state.villages = villages;
    state.townships = townships;
    state.townshipOf = townshipOf;
    state.countyName = counties.map((c) => c.name).join('、');
    if (state.filter.township !== null && !byKey.has(state.filter.township) && state.filter.township !== 'none') {
      state.filter.township = null;
    }
    buildDom();
  }

  function townshipName(tw) {
    return tw.name === null ? t('noTownship') : tw.name;
  }

  function buildDom() {
    state.cards.clear();
    state.twEls.clear();
    state.info.clear();
    const tree = $('tree');
    const list = $('township-list');
    const sections = [];
    const chips = [];

    const heading = el('h2', 'visually-hidden');
    heading.dataset.i18n = 'treeHeading';
    heading.textContent = t('treeHeading');
    sections.push(heading);

    for (const tw of state.townships) {
      const sectionId = `tw-${tw.key}`;
      const section = el('section', 'township');
      section.id = sectionId;
      section.dataset.township = tw.key;
      const h3 = el('h3', 'tw-head');
      const toggle = el('button', 'tw-toggle');
      toggle.type = 'button';
      toggle.setAttribute('aria-controls', `${sectionId}-body`);
      const caret = el('span', 'caret');
      caret.setAttribute('aria-hidden', 'true');
      const name = el('span', 'tw-title', townshipName(tw));
      name.id = `${sectionId}-title`;
      const summary = el('span', 'tw-sum');
      const sOn = el('span', 'n n-online');
      const sOff = el('span', 'n n-offline');
      const sNone = el('span', 'n n-none');
      const sTotal = el('span', 'n n-total');
      summary.append(sTotal, sOn, sOff, sNone);
      toggle.append(caret, name, summary);
      h3.append(toggle);
      const body = el('div', 'villages');
      body.id = `${sectionId}-body`;
      body.setAttribute('role', 'group');
      body.setAttribute('aria-labelledby', `${sectionId}-title`);
      const empty = el('p', 'empty-note', t('emptyTownship'));
      empty.hidden = tw.villages.length > 0;
      body.append(empty);
      for (const v of tw.villages) body.append(buildCard(v));
      section.append(h3, body);
      toggle.addEventListener('click', () => setCollapsed(tw, !state.collapsed.has(tw.code || tw.key)));
      sections.push(section);

      // The summary chip in the side bar.
      const li = el('li');
      const chip = el('button', 'tw-chip');
      chip.type = 'button';
      chip.dataset.township = tw.key;
      chip.setAttribute('aria-pressed', 'false');
      const row = el('span', 'tw-row');
      row.setAttribute('aria-hidden', 'true');
      const cName = el('span', 'tw-name', townshipName(tw));
      const cOn = el('span', 'n n-online');
      const cOff = el('span', 'n n-offline');
      const cNone = el('span', 'n n-none');
      const cTotal = el('span', 'n n-total');
      row.append(cName, cOn, cOff, cNone, cTotal);
      const bar = el('span', 'bar');
      bar.setAttribute('aria-hidden', 'true');
      const bOn = el('span', 'b-online');
      const bOff = el('span', 'b-offline');
      const bNone = el('span', 'b-none');
      bar.append(bOn, bOff, bNone);
      chip.append(row, bar);
      chip.addEventListener('click', () => selectTownship(tw.key));
      li.append(chip);
      chips.push(li);

      state.twEls.set(tw.key, {
        tw, section, toggle, body, empty, name, sTotal, sOn, sOff, sNone,
        chip, cName, cTotal, bOn, bOff, bNone, cOn, cOff, cNone, counts: null,
      });
      paintCollapsed(tw);
    }

    const noMatch = el('p', 'no-match', t('noMatch'));
    noMatch.id = 'no-match';
    noMatch.hidden = true;
    sections.push(noMatch);
    if (state.townships.length === 0) {
      sections.push(el('p', 'no-match', t('noRegions')));
    }

    tree.replaceChildren(...sections);
    list.replaceChildren(...chips);
    setText($('county-name'), state.countyName || '');
    state.built = true;
    // The open village may have left the directory.
    if (panel.villageId !== null && !state.cards.has(panel.villageId)) closePanel(false);
    for (const v of state.villages) paintCard(v.id, false);
    paintCounts();
    applyFilters();
  }

  function buildCard(v) {
    // A card is a button: it opens the village panel.
    const li = el('div', 'village');
    li.dataset.villageCode = String(v.code);
    li.dataset.status = 'none';
    li.dataset.villageId = String(v.id);
    li.setAttribute('role', 'button');
    li.tabIndex = 0;
    li.setAttribute('aria-haspopup', 'dialog');
    li.setAttribute('aria-controls', 'village-panel');
    if (panel.villageId === v.id) li.dataset.selected = 'true';

    const head = el('div', 'v-head');
    const name = el('span', 'v-name', v.name);
    name.title = v.name;
    const badge = el('span', 'badge');
    head.append(name, badge);

    const sub = el('div', 'v-sub');
    const code = el('span', 'v-code', v.code);
    const agentsN = el('span', 'v-agents');
    const tags = el('span', 'v-tags');
    const tagEls = [];
    for (const tag of Array.isArray(v.tags) ? v.tags : []) {
      const chip = el('span', 'tag', tagLabel(String(tag)));
      chip.dataset.tag = String(tag);
      chip.title = String(tag);
      tags.append(chip);
      tagEls.push(chip);
    }
    sub.append(code, agentsN, tags);

    const meta = el('div', 'v-meta');
    const seen = el('span', 'v-seen');
    const seenLbl = el('span', 'lbl');
    const seenVal = el('span', 'val');
    seen.append(seenLbl, seenVal);
    const amp = el('span', 'v-amp');
    const ampLbl = el('span', 'lbl');
    const ampVal = el('span', 'val');
    amp.append(ampLbl, ampVal);
    meta.append(seen, amp);

    const play = el('div', 'v-play');
    const playIcon = el('span', 'play-icon', '♪');
    playIcon.setAttribute('aria-hidden', 'true');
    const playLbl = el('span', 'visually-hidden');
    const playVal = el('span', 'val');
    play.append(playIcon, playLbl, playVal);

    li.append(head, sub, meta, play);
    state.cards.set(v.id, {
      li, name, badge, code, agentsN, tagEls, seen, seenLbl, seenVal, amp, ampLbl, ampVal, play, playLbl, playVal,
      sig: null,
      village: v,
    });
    return li;
  }

  // ---- Painting (in place, only what changed) ---------------------------

  function paintCard(villageId, flash) {
    const c = state.cards.get(villageId);
    if (!c) return;
    const info = computeInfo(villageId);
    const sig = JSON.stringify([info.status, info.agents, info.lastSeen, info.connectedSince, info.amp, info.title, info.since]);
    const prev = state.info.get(villageId);
    state.info.set(villageId, info);
    if (panel.villageId === villageId) paintPanel();
    if (c.sig === sig) return;
    c.sig = sig;

    c.li.dataset.status = info.status;
    c.badge.className = `badge b-${info.status}`;
    setText(c.badge, t(info.status));
    setText(c.agentsN, info.agents.length > 1 ? t('agentsN', info.agents.length) : '');
    const agentList = info.agents.map((a) => t('agentItem', a.name, t(a.online ? 'online' : 'offline'))).join(t('listSep'));
    setAttr(c.li, 'title', info.agents.length ? t('agentsTitle', agentList) : t('noAgentTitle'));
    setText(c.seenLbl, t('seen'));
    paintSeen(c, info);

    setText(c.ampLbl, t('amp'));
    c.amp.dataset.amp = info.status === 'none' ? 'na' : info.amp;
    setText(c.ampVal, info.status === 'none' ? '—' : t(`amp_${info.amp}`));

    setText(c.playLbl, `${t('playing')}:`);
    c.play.dataset.playing = info.title ? 'true' : 'false';
    setText(c.playVal, info.title || t('nothingPlaying'));
    setAttr(c.play, 'title', info.title ? (info.since ? `${info.title} — ${t('playingSince', absTime(info.since))}` : info.title) : null);

    if (flash && prev) {
      c.li.classList.remove('flash');
      void c.li.offsetWidth; // restart the animation
      c.li.classList.add('flash');
    }
    if (state.filter.status !== 'all' && (!prev || prev.status !== info.status)) applyFilterTo(c);
  }

  function paintSeen(c, info) {
    let text;
    let title = null;
    if (info.status === 'online') {
      text = t('seenNow');
      const parts = [];
      if (info.connectedSince !== null) parts.push(t('connectedSinceAt', absTime(info.connectedSince)));
      if (info.lastSeen !== null) parts.push(t('lastSeenAt', absTime(info.lastSeen)));
      title = parts.join('\n');
    } else if (info.status === 'offline') {
      if (info.lastSeen === null) {
        text = t('never');
      } else {
        text = relTime(info.lastSeen);
        title = t('lastSeenAt', absTime(info.lastSeen));
      }
    } else {
      text = '—';
    }
    setText(c.seenVal, text);
    setAttr(c.seen, 'title', title);
  }

  function refreshRelativeTimes() {
    for (const [id, c] of state.cards) {
      const info = state.info.get(id);
      if (info) paintSeen(c, info);
    }
    if (panel.villageId !== null) paintPanel();
  }

  function countsOf(villages) {
    const n = { villages: villages.length, online: 0, offline: 0, none: 0 };
    for (const v of villages) {
      const info = state.info.get(v.id);
      n[info ? info.status : 'none'] += 1;
    }
    return n;
  }

  function paintCounts() {
    const total = countsOf(state.villages);
    setText($('count-villages'), total.villages);
    setText($('count-online'), total.online);
    setText($('count-offline'), total.offline);
    setText($('count-none'), total.none);
    for (const e of state.twEls.values()) {
      const n = countsOf(e.tw.villages);
      const sig = `${n.villages}/${n.online}/${n.offline}/${n.none}/${state.lang}`;
      if (e.counts === sig) continue;
      e.counts = sig;
      const name = townshipName(e.tw);
      setText(e.cTotal, `/${n.villages}`);
      setText(e.cOn, n.online);
      setText(e.cOff, n.offline);
      setText(e.cNone, n.none);
      e.bOn.style.flexGrow = String(n.online);
      e.bOff.style.flexGrow = String(n.offline);
      e.bNone.style.flexGrow = String(n.none);
      e.chip.setAttribute('aria-label', t('twAria', name, n.villages, n.online, n.offline, n.none));
      e.chip.classList.toggle('has-offline', n.offline > 0);
      setText(e.sTotal, t('twSummary', n.villages));
      setText(e.sOn, `${t('online')} ${n.online}`);
      setText(e.sOff, `${t('offline')} ${n.offline}`);
      setText(e.sNone, `${t('none')} ${n.none}`);
    }
  }

  // ---- Filters and collapsing -------------------------------------------

  function matches(c) {
    const f = state.filter;
    const info = state.info.get(c.village.id);
    const status = info ? info.status : 'none';
    if (f.status !== 'all' && status !== f.status) return false;
    if (f.township !== null && state.townshipOf.get(c.village.id) !== f.township) return false;
    if (f.text) {
      const q = f.text;
      const name = String(c.village.name).toLowerCase();
      if (!name.includes(q) && !String(c.village.code).includes(q)) return false;
    }
    return true;
  }

  function applyFilterTo(c) {
    const show = matches(c);
    if (c.li.hidden === show) c.li.hidden = !show;
    const key = state.townshipOf.get(c.village.id);
    const e = state.twEls.get(key);
    if (e) paintSectionVisibility(e);
    paintResultCount();
  }

  function paintSectionVisibility(e) {
    const f = state.filter;
    let visible = 0;
    for (const v of e.tw.villages) {
      const c = state.cards.get(v.id);
      if (c && !c.li.hidden) visible += 1;
    }
    const filtering = f.text !== '' || f.status !== 'all' || f.township !== null;
    const hide = f.township !== null ? f.township !== e.tw.key : filtering && visible === 0;
    if (e.section.hidden !== hide) e.section.hidden = hide;
    e.visible = visible;
  }

  function paintResultCount() {
    let shown = 0;
    for (const c of state.cards.values()) if (!c.li.hidden) shown += 1;
    setText($('result-count'), state.built ? t('resultCount', shown, state.cards.size) : '');
    const noMatch = $('no-match');
    if (noMatch) noMatch.hidden = !(state.cards.size > 0 && shown === 0);
  }

  function applyFilters() {
    for (const c of state.cards.values()) {
      const show = matches(c);
      if (c.li.hidden === show) c.li.hidden = !show;
    }
    for (const e of state.twEls.values()) {
      paintSectionVisibility(e);
      const pressed = state.filter.township === e.tw.key;
      e.chip.setAttribute('aria-pressed', String(pressed));
    }
    const clear = $('township-clear');
    const tw = state.filter.township !== null ? state.twEls.get(state.filter.township) : null;
    clear.hidden = !tw;
    if (tw) {
      setText(clear, t('onlyTownship', townshipName(tw.tw)));
      clear.setAttribute('aria-label', t('clearTownship'));
    }
    paintResultCount();
  }

  function selectTownship(key) {
    const same = state.filter.township === key;
    state.filter.township = same ? null : key;
    applyFilters();
    const e = state.twEls.get(key);
    if (!same && e) {
      if (state.collapsed.has(e.tw.code || e.tw.key)) setCollapsed(e.tw, false);
      e.section.scrollIntoView({ block: 'start', behavior: prefersReducedMotion() ? 'auto' : 'smooth' });
    } else if (same && e) {
      e.section.scrollIntoView({ block: 'start' });
    }
  }

  function prefersReducedMotion() {
    return window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  }

  function setCollapsed(tw, collapsed) {
    const key = tw.code || tw.key;
    if (collapsed) state.collapsed.add(key);
    else state.collapsed.delete(key);
    paintCollapsed(tw);
    try {
      localStorage.setItem(COLLAPSED_KEY, JSON.stringify([...state.collapsed]));
    } catch (_) {
      /* storage may be unavailable */
    }
  }

  function paintCollapsed(tw) {
    const e = state.twEls.get(tw.key);
    if (!e) return;
    const collapsed = state.collapsed.has(tw.code || tw.key);
    e.toggle.setAttribute('aria-expanded', String(!collapsed));
    e.body.hidden = collapsed;
    e.section.classList.toggle('collapsed', collapsed);
  }

  // ---- Agents ------------------------------------------------------------

  function indexAgent(a) {
    let set = state.agentsByVillage.get(a.village_id);
    if (!set) {
      set = new Set();
      state.agentsByVillage.set(a.village_id, set);
    }
    set.add(a.id);
  }

  function setAgents(list) {
    if (!Array.isArray(list)) throw new LoadError('parse');
    state.agents = new Map();
    state.agentsByVillage = new Map();
    for (const a of list) {
      if (!a || typeof a.id !== 'string') continue;
      state.agents.set(a.id, a);
      indexAgent(a);
    }
  }

  // Applies one agent event to the data; returns the village ids touched.
  function absorbAgent(a) {
    if (!a || typeof a !== 'object' || typeof a.id !== 'string') return [];
    const old = state.agents.get(a.id);
    const touched = [a.village_id];
    if (old && old.village_id !== a.village_id) {
      const set = state.agentsByVillage.get(old.village_id);
      if (set) set.delete(a.id);
      touched.push(old.village_id);
    }
    state.agents.set(a.id, a);
    indexAgent(a);
    return touched;
  }

  function onAgentEvent(a) {
    if (pendingEvents) pendingEvents.push(a);
    const touched = absorbAgent(a);
    if (!state.built) return;
    let unknown = false;
    for (const vid of touched) {
      if (state.cards.has(vid)) paintCard(vid, true);
      else if (vid === a.village_id) unknown = true;
    }
    paintCounts();
    // An agent of a village we do not know: the directory changed.
    if (unknown) requestLoad(true);
  }

  // ---- Village panel -----------------------------------------------------
  //
  // One village at a time: its facts, its agents (from state.agents, so the
  // event stream keeps them live), removing an agent, and enrolment codes.

  const panel = {
    villageId: null,
    opener: null, // the card to give focus back to
    rows: new Map(), // agent id -> row elements
    lang: null,
  };
  // Enrolment codes created on this page, by village id: kept while they
  // are valid, so closing the panel by mistake does not lose the code.
  const codes = new Map();
  let controllerInfo = null;

  const STATE_DIR = '/var/lib/dalaba-agent';
  const OFFSET_WARN_MS = 1000;

  function shellWord(s) {
    const v = String(s);
    return /^[A-Za-z0-9@%+=:,./_-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
  }

  // The command the technician runs, for this controller's address.
  function enrolCommand(code, fingerprint) {
    const words = ['dalaba-agent', '--state-dir', STATE_DIR, 'enrol', '--controller', location.origin, '--code', code];
    if (fingerprint) words.push('--fingerprint', fingerprint);
    return words.map(shellWord).join(' ');
  }

  function formatBytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '—';
    const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let v = n;
    let i = 0;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i += 1;
    }
    const shown = i === 0 ? String(v) : v < 100 ? v.toFixed(1) : String(Math.round(v));
    return `${shown} ${units[i]}`;
  }

  function formatOffset(ms) {
    const sign = ms > 0 ? '+' : ms < 0 ? '−' : '';
    return `${sign}${Math.abs(ms).toLocaleString('en-US')} ms`;
  }

  function durationText(ms) {
    const min = Math.floor(ms / 60000);
    if (min < 1) return t('lessThanMinute');
    if (min < 60) return t('nMinutes', min);
    const hours = Math.floor(min / 60);
    if (hours < 48) return t('nHours', hours);
    return t('nDays', Math.floor(hours / 24));
  }

  function timeAndAgo(ms) {
    return t('timeAndAgo', absTime(ms), relTime(ms));
  }

  function str(v) {
    return v === null || v === undefined || v === '' ? '—' : String(v);
  }

  function villageAgents(villageId) {
    const ids = state.agentsByVillage.get(villageId);
    const list = ids ? [...ids].map((id) => state.agents.get(id)).filter(Boolean) : [];
    // A stable order: online first, then by enrolment.
    return list.sort(
      (a, b) =>
        Number(b.online === true) - Number(a.online === true) ||
        String(a.enrolled_at || '').localeCompare(String(b.enrolled_at || '')) ||
        a.id.localeCompare(b.id),
    );
  }

  function openPanel(villageId, opener) {
    const v = state.regions.get(villageId);
    if (!v) return;
    const switching = panel.villageId !== villageId;
    if (panel.villageId !== null && switching) markCard(panel.villageId, false);
    panel.villageId = villageId;
    panel.opener = opener || null;
    const node = $('village-panel');
    node.dataset.villageCode = String(v.code);
    if (switching) {
      panel.rows.clear();
      $('vp-agents').replaceChildren();
      setText($('enrol-error'), '');
      $('enrol-error').hidden = true;
      setText($('copy-status'), '');
    }
    markCard(villageId, true);
    document.body.classList.add('panel-open');
    node.hidden = false;
    paintPanel();
    $('vp-name').focus({ preventScroll: true });
    const c = state.cards.get(villageId);
    if (c) c.li.scrollIntoView({ block: 'nearest' });
  }

  function closePanel(restoreFocus) {
    if (panel.villageId === null) return;
    markCard(panel.villageId, false);
    // The card may have been rebuilt since (a directory reload).
    const card = state.cards.get(panel.villageId);
    const opener = panel.opener && panel.opener.isConnected ? panel.opener : card ? card.li : null;
    panel.villageId = null;
    panel.opener = null;
    panel.rows.clear();
    $('vp-agents').replaceChildren();
    const node = $('village-panel');
    node.hidden = true;
    delete node.dataset.villageCode;
    document.body.classList.remove('panel-open');
    if (restoreFocus && opener && opener.isConnected) opener.focus({ preventScroll: true });
  }

  function markCard(villageId, on) {
    const c = state.cards.get(villageId);
    if (!c) return;
    if (on) c.li.dataset.selected = 'true';
    else delete c.li.dataset.selected;
  }

  // Paints everything in the panel from the current state.
  function paintPanel() {
    const vid = panel.villageId;
    if (vid === null) return;
    const v = state.regions.get(vid);
    if (!v) {
      closePanel(false);
      return;
    }
    if (panel.lang !== state.lang) {
      // Labels of the agent rows are built once per language.
      panel.lang = state.lang;
      panel.rows.clear();
      $('vp-agents').replaceChildren();
    }
    const node = $('village-panel');
    node.dataset.villageCode = String(v.code);
    setText($('vp-name'), v.name);
    const info = state.info.get(vid) || computeInfo(vid);
    const badge = $('vp-badge');
    badge.className = `badge b-${info.status}`;
    setText(badge, t(info.status));
    setText($('vp-code'), v.code);
    const parent = v.parent_id !== null && v.parent_id !== undefined ? state.regions.get(v.parent_id) : null;
    setText($('vp-township'), parent ? parent.name : t('noTownship'));
    const hasCoords = Number.isFinite(v.latitude) && Number.isFinite(v.longitude);
    setText($('vp-coords'), hasCoords ? t('coordsValue', v.latitude, v.longitude) : '—');
    const tags = Array.isArray(v.tags) ? v.tags.map(String) : [];
    const tagBox = $('vp-tags');
    const tagSig = JSON.stringify([state.lang, tags]);
    if (tagBox.dataset.sig !== tagSig) {
      tagBox.dataset.sig = tagSig;
      if (tags.length === 0) {
        tagBox.replaceChildren(document.createTextNode('—'));
      } else {
        tagBox.replaceChildren(
          ...tags.map((tag) => {
            const chip = el('span', 'tag', tagLabel(tag));
            chip.dataset.tag = tag;
            chip.title = tag;
            return chip;
          }),
        );
      }
    }
    paintPanelAgents();
    paintEnrol();
  }

  const FIELDS = [
    ['since', true],
    ['seen', true],
    ['version', false],
    ['peer', false],
    ['hw', true],
    ['audio', false],
    ['driver', false],
    ['offset', false],
    ['disk', false],
    ['cache', false],
    ['amp', false],
    ['playing', true],
  ];

  function buildAgentRow(id) {
    const li = el('li', 'agent');
    li.dataset.agentId = id;
    const head = el('div', 'ag-head');
    const host = el('span', 'ag-host');
    const idVal = el('span', 'ag-id mono', id);
    idVal.title = t('f_id');
    const badge = el('span', 'badge');
    const remove = el('button', 'danger-plain', t('removeAgent'));
    remove.type = 'button';
    remove.dataset.removeAgent = id;
    head.append(host, idVal, badge, remove);
    const dl = el('dl', 'ag-grid');
    const fields = {};
    for (const [key, wide] of FIELDS) {
      const f = el('div', wide ? 'f wide' : 'f');
      f.dataset.field = key;
      const dt = el('dt', null, t(`f_${key}`));
      const dd = el('dd');
      f.append(dt, dd);
      dl.append(f);
      fields[key] = { f, dd };
    }
    const note = el('p', 'ag-note');
    li.append(head, dl, note);
    return { li, host, badge, fields, note, remove };
  }

  function setField(r, key, text, show) {
    const { f, dd } = r.fields[key];
    if (f.hidden === show) f.hidden = !show;
    setText(dd, text);
  }

  function paintAgentRow(r, a) {
    const online = a.online === true;
    r.li.dataset.online = String(online);
    setText(r.host, str(a.hostname || a.id));
    r.badge.className = `badge b-${online ? 'online' : 'offline'}`;
    setText(r.badge, t(online ? 'online' : 'offline'));
    setAttr(r.remove, 'aria-label', `${t('removeAgent')}: ${a.hostname || a.id}`);

    const since = online ? parseTime(a.connected_since) : null;
    setField(r, 'since', since === null ? '—' : timeAndAgo(since), online);
    const seen = parseTime(a.last_seen);
    // Online, "last seen" is now: shown only for an agent that is away.
    setField(r, 'seen', seen === null ? t('never') : timeAndAgo(seen), !online);
    setField(r, 'version', str(a.agent_version), true);
    setField(r, 'peer', str(a.peer), online);
    const hw = a.hardware && typeof a.hardware === 'object' ? a.hardware : {};
    const board = [hw.model, hw.arch, hw.os].filter((x) => typeof x === 'string' && x !== '');
    setField(r, 'hw', board.length ? board.join(' · ') : '—', true);
    setField(r, 'audio', str(hw.audio_output), true);
    setField(r, 'driver', str(hw.amplifier_driver), true);

    const st = online && a.status && typeof a.status === 'object' ? a.status : null;
    const offset = st && Number.isFinite(st.clock_offset_ms) ? st.clock_offset_ms : null;
    setField(r, 'offset', offset === null ? '—' : formatOffset(offset), st !== null);
    const warn = offset !== null && Math.abs(offset) > OFFSET_WARN_MS;
    const offsetDd = r.fields.offset.dd;
    offsetDd.classList.toggle('warn', warn);
    setAttr(offsetDd, 'title', warn ? t('offsetWarn') : null);
    setAttr(r.fields.offset.f, 'data-warn', warn ? 'true' : null);
    setField(r, 'disk', st ? formatBytes(st.disk_free_bytes) : '—', st !== null);
    setField(r, 'cache', st ? formatBytes(st.cache_bytes) : '—', st !== null);
    const amp = st && AMP_STATES.has(st.amplifier) ? st.amplifier : 'unknown';
    setField(r, 'amp', t(`amp_${amp}`), st !== null);
    r.fields.amp.dd.dataset.amp = amp;
    const np = st && st.now_playing && typeof st.now_playing === 'object' ? st.now_playing : null;
    let playing = t('nothingPlaying');
    if (np && np.title) {
      playing = Number.isFinite(np.since_ms) ? `${np.title} — ${t('playingSince', absTime(np.since_ms))}` : String(np.title);
    }
    setField(r, 'playing', playing, st !== null);

    const note = st ? '' : online ? t('noStatusYet') : t('offlineNoStatus');
    setText(r.note, note);
    r.note.hidden = note === '';
  }

  function paintPanelAgents() {
    const vid = panel.villageId;
    const agents = villageAgents(vid);
    setText($('vp-agents-h'), t('agentsHeading', agents.length));
    $('vp-no-agents').hidden = agents.length > 0;
    const list = $('vp-agents');
    const keep = new Set(agents.map((a) => a.id));
    for (const [id, r] of panel.rows) {
      if (!keep.has(id)) {
        r.li.remove();
        panel.rows.delete(id);
      }
    }
    agents.forEach((a, i) => {
      let r = panel.rows.get(a.id);
      if (!r) {
        r = buildAgentRow(a.id);
        panel.rows.set(a.id, r);
      }
      paintAgentRow(r, a);
      // Move only what is out of place, so a focused button keeps focus.
      if (list.children[i] !== r.li) list.insertBefore(r.li, list.children[i] || null);
    });
  }

  function paintEnrol() {
    const vid = panel.villageId;
    const entry = codes.get(vid);
    setText($('create-code'), t('createCode'));
    const result = $('enrol-result');
    if (!entry) {
      result.hidden = true;
      setText($('enrol-code'), '');
      setText($('enrol-command'), '');
      return;
    }
    result.hidden = false;
    setText($('enrol-code'), entry.code);
    setText($('enrol-command'), entry.command);
    setText($('run-command'), `dalaba-agent --state-dir ${STATE_DIR} run`);
    const left = entry.expiresAt === null ? null : entry.expiresAt - Date.now();
    const expired = left !== null && left <= 0;
    result.dataset.expired = String(expired);
    let expiry = '';
    if (entry.expiresAt !== null) {
      expiry = expired ? t('expiredAt', absTime(entry.expiresAt)) : t('expiresAt', absTime(entry.expiresAt), durationText(left));
    }
    setText($('enrol-expiry'), expiry);
    // Agents that were not there when the code was made.
    const fresh = villageAgents(vid).filter((a) => !entry.before.has(a.id));
    const joined = $('enrol-joined');
    if (fresh.length) {
      const a = fresh[0];
      setText(joined, t('newAgent', a.hostname || a.id, t(a.online ? 'online' : 'offline')));
      joined.dataset.online = String(a.online === true);
      joined.hidden = false;
    } else {
      joined.hidden = true;
      setText(joined, '');
    }
  }

  function apiMessage(res) {
    const body = res.data;
    if (body && typeof body === 'object' && (body.message || body.error)) return String(body.message || body.error);
    return `HTTP ${res.status}`;
  }

  function loadErrorText(e) {
    if (e instanceof LoadError) {
      if (e.kind === 'timeout') return t('errTimeout');
      if (e.kind === 'parse') return t('errParse');
      if (e.kind === 'http') return e.detail || `HTTP ${e.status}`;
      return t('errNetwork');
    }
    return String((e && e.message) || e);
  }

  async function createCode() {
    const vid = panel.villageId;
    if (vid === null) return;
    const button = $('create-code');
    const error = $('enrol-error');
    button.disabled = true;
    setText(button, t('creatingCode'));
    error.hidden = true;
    try {
      if (!controllerInfo) {
        const info = await getJSON('/controller');
        if (!info || typeof info !== 'object') throw new LoadError('parse');
        controllerInfo = info;
      }
      const fingerprint = typeof controllerInfo.cert_sha256 === 'string' ? controllerInfo.cert_sha256 : '';
      const before = new Set(state.agentsByVillage.get(vid) || []);
      const res = await sendJSON('POST', `/villages/${encodeURIComponent(vid)}/enrolment-codes`, {});
      if (res.status !== 201) throw new LoadError('http', res.status, apiMessage(res));
      const body = res.data;
      if (!body || typeof body.code !== 'string' || body.code === '') throw new LoadError('parse', res.status);
      codes.set(vid, {
        code: body.code,
        expiresAt: parseTime(body.expires_at),
        command: enrolCommand(body.code, fingerprint),
        before,
      });
      if (panel.villageId === vid) {
        setText($('copy-status'), '');
        paintEnrol();
        $('enrol-result').scrollIntoView({ block: 'nearest' });
      }
    } catch (e) {
      if (!(e instanceof LoadError)) console.error(e);
      if (panel.villageId === vid) {
        setText(error, t('createFailed', loadErrorText(e)));
        error.hidden = false;
      }
    } finally {
      button.disabled = false;
      if (panel.villageId !== null) paintEnrol();
    }
  }

  function selectText(node) {
    const sel = window.getSelection();
    if (!sel) return;
    const range = document.createRange();
    range.selectNodeContents(node);
    sel.removeAllRanges();
    sel.addRange(range);
  }

  async function copyCommand() {
    const node = $('enrol-command');
    const text = node.textContent;
    const status = $('copy-status');
    if (!text) return;
    // The async clipboard needs a secure context (HTTPS or localhost).
    if (window.isSecureContext && navigator.clipboard && navigator.clipboard.writeText) {
      try {
        await navigator.clipboard.writeText(text);
        setText(status, t('copied'));
        return;
      } catch (_) {
        /* fall back to selecting */
      }
    }
    selectText(node);
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch (_) {
      copied = false;
    }
    setText(status, copied ? t('copied') : t('copySelect'));
  }

  // ---- Removing an agent -------------------------------------------------

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

  function initPanel() {
    const tree = $('tree');
    const cardOf = (target) => {
      const card = target && target.closest ? target.closest('.village[data-village-id]') : null;
      return card && tree.contains(card) ? card : null;
    };
    const open = (card) => {
      const id = Number(card.dataset.villageId);
      if (Number.isFinite(id)) openPanel(id, card);
    };
    tree.addEventListener('click', (ev) => {
      const card = cardOf(ev.target);
      if (card) open(card);
    });
    tree.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter' && ev.key !== ' ') return;
      const card = cardOf(ev.target);
      if (!card || ev.target !== card) return;
      ev.preventDefault();
      open(card);
    });
    $('vp-close').addEventListener('click', () => closePanel(true));
    document.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || panel.villageId === null || ev.defaultPrevented) return;
      if ($('confirm-remove').open) return;
      // Esc in a filled search box clears the search first.
      if (ev.target === $('filter-text') && $('filter-text').value !== '') return;
      ev.preventDefault();
      closePanel(true);
    });
    $('create-code').addEventListener('click', createCode);
    $('copy-command').addEventListener('click', copyCommand);
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

  // ---- Loading -----------------------------------------------------------

  class LoadError extends Error {
    constructor(kind, status, detail) {
      super(detail || kind);
      this.kind = kind; // network | timeout | http | parse
      this.status = status || null;
      this.detail = detail || '';
    }
  }

  async function getJSON(path) {
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
      if (!res.ok) {
        let detail = '';
        try {
          const body = await res.json();
          detail = (body && (body.message || body.error)) || '';
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
  async function sendJSON(method, path, body) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    const init = { method, headers: { Accept: 'application/json' }, cache: 'no-store', signal: ctl.signal };
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

  let loadInFlight = null;
  let loadQueued = false;
  let wantRegions = true;
  let pendingEvents = null; // events received while /agents is being fetched
  let retryDelay = 2000;
  let retryTimer = null;
  let countdownTimer = null;
  let lastError = null;
  let reloadOnOpen = false;

  function requestLoad(withRegions) {
    if (withRegions) wantRegions = true;
    if (loadInFlight) {
      loadQueued = true;
      return;
    }
    clearRetry();
    loadInFlight = doLoad().finally(() => {
      loadInFlight = null;
      if (loadQueued) {
        loadQueued = false;
        requestLoad(false);
      }
    });
  }

  async function doLoad() {
    const needRegions = wantRegions || !state.built;
    wantRegions = false;
    try {
      const regionsP = needRegions ? getJSON('/regions') : Promise.resolve(null);
      // Open the stream first so that no change falls between the list and
      // the events; wait for it only briefly.
      if (!state.built && !live) await Promise.race([streamOpened, sleep(STREAM_WAIT_MS)]);
      if (!live) reloadOnOpen = true;
      pendingEvents = [];
      const [regions, agents] = await Promise.all([regionsP, getJSON('/agents')]);
      const replay = pendingEvents;
      pendingEvents = null;
      setAgents(agents);
      for (const a of replay) absorbAgent(a);
      if (regions) {
        setRegions(regions);
      } else {
        for (const v of state.villages) paintCard(v.id, false);
        paintCounts();
        if (state.filter.status !== 'all') applyFilters();
      }
      // Agents of villages we do not know yet: reload the directory once.
      if (!needRegions) {
        for (const a of state.agents.values()) {
          if (!state.regions.has(a.village_id)) {
            wantRegions = true;
            loadQueued = true;
            break;
          }
        }
      }
      lastError = null;
      retryDelay = 2000;
      hideBanner();
      if (document.body.dataset.ready !== 'true') document.body.dataset.ready = 'true';
    } catch (e) {
      if (pendingEvents) {
        for (const a of pendingEvents) absorbAgent(a);
        pendingEvents = null;
      }
      if (needRegions) wantRegions = true;
      lastError = e instanceof LoadError ? e : new LoadError('network', null, String(e && e.message));
      if (!(e instanceof LoadError)) console.error(e);
      scheduleRetry();
    }
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function clearRetry() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    retryTimer = null;
    countdownTimer = null;
  }

  function scheduleRetry() {
    clearRetry();
    const due = Date.now() + retryDelay;
    retryTimer = setTimeout(() => {
      clearRetry();
      paintBanner(null);
      requestLoad(false);
    }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
    const tick = () => paintBanner(Math.max(1, Math.ceil((due - Date.now()) / 1000)));
    tick();
    countdownTimer = setInterval(tick, 1000);
  }

  function paintBanner(secondsLeft) {
    if (!lastError) return;
    const e = lastError;
    const head = e.kind === 'http' || e.kind === 'parse' ? t('serverError') : t('unreachable');
    let detail;
    if (e.kind === 'http') detail = `HTTP ${e.status}${e.detail ? `: ${e.detail}` : ''}`;
    else if (e.kind === 'parse') detail = t('errParse');
    else if (e.kind === 'timeout') detail = t('errTimeout');
    else detail = t('errNetwork');
    const parts = [t('errWrap', head, detail)];
    parts.push(secondsLeft === null ? t('retrying') : t('retryIn', secondsLeft));
    if (state.built) parts.push(t('staleNote'));
    setText($('banner-text'), parts.join(' · '));
    $('banner').hidden = false;
    bannerSeconds = secondsLeft;
  }
  let bannerSeconds = null;

  function hideBanner() {
    clearRetry();
    $('banner').hidden = true;
  }

  // ---- Event stream ------------------------------------------------------

  let live = false;
  let source = null;
  let streamRetry = 1000;
  let resolveStreamOpened;
  const streamOpened = new Promise((resolve) => {
    resolveStreamOpened = resolve;
  });

  function connectEvents() {
    if (typeof EventSource === 'undefined') return;
    const es = new EventSource(`${API}/events`);
    source = es;
    es.addEventListener('open', () => {
      if (source !== es) return;
      streamRetry = 1000;
      setLive(true);
      resolveStreamOpened();
      // Changes may have been missed while the stream was down.
      if (reloadOnOpen || lastError) {
        reloadOnOpen = false;
        requestLoad(false);
      }
    });
    es.addEventListener('error', () => {
      if (source !== es) return;
      if (live) reloadOnOpen = true;
      setLive(false);
      // The browser reconnects by itself unless the server refused the
      // stream outright; then we start a new one after a pause.
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        source = null;
        setTimeout(connectEvents, streamRetry);
        streamRetry = Math.min(streamRetry * 2, 30000);
      }
    });
    es.addEventListener('agent', (ev) => {
      let a;
      try {
        a = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      onAgentEvent(a);
    });
    es.addEventListener('resync', () => requestLoad(false));
  }

  function setLive(on) {
    live = on;
    const node = $('live');
    node.dataset.connected = String(on);
    setText($('live-text'), on ? t('liveOn') : t('liveOff'));
    node.title = on ? t('liveOnTitle') : t('liveOffTitle');
  }

  // ---- Language ----------------------------------------------------------

  function initialLang() {
    const q = new URLSearchParams(location.search).get('lang');
    if (q === 'en' || q === 'zh') return q;
    try {
      const s = localStorage.getItem(LANG_KEY);
      if (s === 'en' || s === 'zh') return s;
    } catch (_) {
      /* storage may be unavailable */
    }
    return 'zh';
  }

  function applyLang() {
    document.documentElement.lang = t('htmlLang');
    document.title = t('title');
    for (const n of document.querySelectorAll('[data-i18n]')) setText(n, t(n.dataset.i18n));
    for (const n of document.querySelectorAll('[data-i18n-placeholder]')) n.placeholder = t(n.dataset.i18nPlaceholder);
    for (const n of document.querySelectorAll('[data-i18n-aria]')) n.setAttribute('aria-label', t(n.dataset.i18nAria));
    setText($('lang-toggle'), t('langButton'));
    $('lang-toggle').setAttribute('aria-label', t('langAria'));
    setLive(live);
    if (!$('banner').hidden) paintBanner(bannerSeconds);
    if (!state.built) return;
    for (const e of state.twEls.values()) {
      const name = townshipName(e.tw);
      setText(e.name, name);
      setText(e.cName, name);
      setText(e.empty, t('emptyTownship'));
    }
    for (const c of state.cards.values()) {
      c.sig = null;
      for (const chip of c.tagEls) setText(chip, tagLabel(chip.dataset.tag));
    }
    for (const v of state.villages) paintCard(v.id, false);
    paintCounts();
    applyFilters();
    paintPanel();
  }

  function toggleLang() {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    try {
      localStorage.setItem(LANG_KEY, state.lang);
    } catch (_) {
      /* storage may be unavailable */
    }
    applyLang();
  }

  // ---- Start -------------------------------------------------------------

  function start() {
    state.lang = initialLang();
    try {
      const saved = JSON.parse(localStorage.getItem(COLLAPSED_KEY) || '[]');
      if (Array.isArray(saved)) state.collapsed = new Set(saved.map(String));
    } catch (_) {
      /* ignore */
    }
    applyLang();

    $('lang-toggle').addEventListener('click', toggleLang);
    $('banner-retry').addEventListener('click', () => {
      clearRetry();
      paintBanner(null);
      requestLoad(false);
    });
    $('filter-text').addEventListener('input', (ev) => {
      state.filter.text = ev.target.value.trim().toLowerCase();
      applyFilters();
    });
    $('filters').addEventListener('submit', (ev) => ev.preventDefault());
    $('filter-status').addEventListener('change', (ev) => {
      if (ev.target && ev.target.name === 'status') {
        state.filter.status = ev.target.value;
        applyFilters();
      }
    });
    $('township-clear').addEventListener('click', () => {
      state.filter.township = null;
      applyFilters();
    });
    $('expand-all').addEventListener('click', () => {
      for (const tw of state.townships) setCollapsed(tw, false);
    });
    $('collapse-all').addEventListener('click', () => {
      for (const tw of state.townships) setCollapsed(tw, true);
    });

    initPanel();
    connectEvents();
    requestLoad(true);
    setInterval(refreshRelativeTimes, RELATIVE_REFRESH_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
