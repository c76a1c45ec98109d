// A small element builder and formatting helpers (no framework: the pages are small).

/**
 * h('a', {href: '#/', 'data-testid': 'x', onclick: f}, 'text', child, [more])
 * Attributes starting with "on" become listeners; false/null/undefined attributes are left out;
 * strings and numbers become text nodes (never HTML).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'className') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** An RFC 3339 time as local "YYYY-MM-DD HH:MM:SS" in a <time> with the exact value. */
export function time(s) {
  if (!s) return h('span', { className: 'muted' }, '—');
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return h('span', {}, String(s));
  return h('time', { datetime: s, title: s }, fmtDate(d));
}

export function fmtDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(
    d.getMinutes(),
  )}:${p(d.getSeconds())}`;
}

/** "3 s ago", "5 min ago", … for a recent time; the date otherwise. */
export function ago(s, now = Date.now()) {
  if (!s) return '—';
  const t = new Date(s).getTime();
  if (Number.isNaN(t)) return String(s);
  const sec = Math.round((now - t) / 1000);
  if (sec < 0) return `in ${fmtSpan(-sec)}`;
  return `${fmtSpan(sec)} ago`;
}

function fmtSpan(sec) {
  if (sec < 90) return `${sec} s`;
  if (sec < 90 * 60) return `${Math.round(sec / 60)} min`;
  if (sec < 36 * 3600) return `${Math.round(sec / 3600)} h`;
  return `${Math.round(sec / 86400)} d`;
}

export function num(v) {
  if (v == null || Number.isNaN(v)) return '—';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4).replace(/\.?0+$/, '');
}

/** A status word as a badge: class "badge badge-<kind>". */
export function badge(text, kind = 'neutral', attrs = {}) {
  return h('span', { className: `badge badge-${kind}`, ...attrs }, text);
}
