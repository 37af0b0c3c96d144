// Numbers as the operator reads them: absolute and relative times,
// durations, byte sizes and clock offsets.
import { t } from './i18n.js';

const TZ = 'Asia/Shanghai';

// Absolute times: "2024-05-01 14:03:22 (北京时间)", the same digits in both
// languages, always in China's time zone whatever the browser's.
let absFormat = null;
export function absTime(ms) {
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

export function relTime(ms) {
  const sec = Math.max(0, (Date.now() - ms) / 1000);
  if (sec < 60) return t('justNow');
  const min = Math.floor(sec / 60);
  if (min < 60) return t('minAgo', min);
  const hours = Math.floor(min / 60);
  if (hours < 48) return t('hourAgo', hours);
  return t('dayAgo', Math.floor(hours / 24));
}

export function parseTime(s) {
  if (typeof s !== 'string') return null;
  const ms = Date.parse(s);
  return Number.isFinite(ms) ? ms : null;
}

export function formatBytes(n) {
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

export function formatOffset(ms) {
  const sign = ms > 0 ? '+' : ms < 0 ? '−' : '';
  return `${sign}${Math.abs(ms).toLocaleString('en-US')} ms`;
}

export function durationText(ms) {
  const min = Math.floor(ms / 60000);
  if (min < 1) return t('lessThanMinute');
  if (min < 60) return t('nMinutes', min);
  const hours = Math.floor(min / 60);
  if (hours < 48) return t('nHours', hours);
  return t('nDays', Math.floor(hours / 24));
}

export function timeAndAgo(ms) {
  return t('timeAndAgo', absTime(ms), relTime(ms));
}

export function str(v) {
  return v === null || v === undefined || v === '' ? '—' : String(v);
}
