// The audit log (admins): who did what, when, allowed or not, with the state before and after.

import { api } from '../api.js';
import { badge, h, replace, time } from '../dom.js';

function json(v) {
  return v == null ? null : JSON.stringify(v, null, 2);
}

function detailText(d) {
  if (d == null) return '';
  if (typeof d === 'string') return d;
  return JSON.stringify(d);
}

function row(e) {
  const before = json(e.before);
  const after = json(e.after);
  const ok = e.status >= 200 && e.status < 300;
  return h(
    'tr',
    { 'data-testid': 'audit-row', 'data-id': e.id },
    h('td', {}, time(e.at)),
    h('td', {}, e.actor ?? '—', e.role ? h('div', { className: 'muted small' }, e.role) : null),
    h('td', { className: 'mono' }, `${e.method} ${e.route}`),
    h('td', {}, badge(String(e.status), ok ? 'ok' : 'error')),
    h('td', {}, e.allowed ? 'yes' : badge('refused', 'error')),
    h(
      'td',
      { className: 'detail' },
      detailText(e.detail),
      before || after
        ? h(
            'details',
            {},
            h('summary', {}, 'Before / after'),
            h(
              'div',
              { className: 'diff' },
              h('div', {}, h('div', { className: 'muted small' }, 'before'), h('pre', {}, before ?? '—')),
              h('div', {}, h('div', { className: 'muted small' }, 'after'), h('pre', {}, after ?? '—')),
            ),
          )
        : null,
    ),
  );
}

export function auditPage(main, app) {
  if (!app.isAdmin()) {
    replace(
      main,
      h('h1', {}, 'Audit'),
      h('p', { className: 'error', role: 'alert', 'data-testid': 'audit-refused' }, 'Only admins can read the audit log.'),
    );
    return { stop() {} };
  }
  const error = h('p', { className: 'error', role: 'alert' });
  const tbody = h('tbody');
  const more = h('button', { type: 'button', className: 'secondary', 'data-testid': 'audit-more', hidden: true }, 'Load more');
  const refresh = h('button', { type: 'button', className: 'secondary', 'data-testid': 'audit-refresh' }, 'Refresh');
  let cursor = null;
  let stopped = false;
  const load = async (append) => {
    try {
      const r = await api.audit(append ? cursor : null);
      if (stopped) return;
      error.textContent = '';
      const rows = r.entries.map(row);
      if (append) tbody.append(...rows);
      else replace(tbody, rows.length ? rows : h('tr', {}, h('td', { colspan: 6, className: 'muted' }, 'No entries.')));
      cursor = r.next_cursor ?? null;
      more.hidden = cursor == null;
    } catch (e) {
      if (e.status !== 401) error.textContent = e.message;
    }
  };
  more.addEventListener('click', () => load(true));
  refresh.addEventListener('click', () => load(false));
  replace(
    main,
    h('h1', {}, 'Audit'),
    h('p', { className: 'muted' }, 'Every request that changed something or was refused, newest first. ', refresh),
    error,
    h(
      'table',
      { className: 'audit', 'data-testid': 'audit-table' },
      h('caption', { className: 'sr-only' }, 'Audit log'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['When', 'Who', 'Request', 'Status', 'Allowed', 'Detail'].map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      tbody,
    ),
    more,
  );
  load(false);
  return {
    stop() {
      stopped = true;
    },
  };
}
