// The groups table: state, replicas, last action, errors; refreshed every 5 s.

import { api } from '../api.js';
import { ago, badge, h, replace } from '../dom.js';
import { poll } from '../poll.js';
import { errorText, lastAction, stateBadge, stateOf } from '../state.js';

const groupHref = (name) => `#/groups/${encodeURIComponent(name)}`;

function row(g) {
  const err = errorText(g.last_error);
  const last = lastAction(g);
  return h(
    'tr',
    { 'data-testid': 'group-row', 'data-group': g.name },
    h('th', { scope: 'row' }, h('a', { href: groupHref(g.name), 'data-testid': 'group-link' }, g.name)),
    h('td', {}, stateBadge(g), g.dry_run && stateOf(g)[0] !== 'dry run' ? [' ', badge('dry run', 'info')] : null),
    h(
      'td',
      { className: 'num', 'data-testid': 'group-replicas' },
      `${g.current ?? '—'} / ${g.ready ?? '—'} / ${g.desired ?? '—'}`,
    ),
    h('td', { className: 'num muted' }, `${g.min}–${g.max}`),
    h(
      'td',
      { className: 'last' },
      last ? h('span', { className: 'clip', title: last }, last) : h('span', { className: 'muted' }, '—'),
      g.last_evaluation ? h('div', { className: 'muted small' }, `evaluated ${ago(g.last_evaluation)}`) : null,
    ),
    h(
      'td',
      { className: 'errors' },
      g.consecutive_errors > 0 ? badge(`${g.consecutive_errors} in a row`, 'error') : null,
      err ? h('div', { className: 'clip small', title: err }, err) : g.consecutive_errors > 0 ? null : h('span', { className: 'muted' }, 'none'),
    ),
  );
}

export function groupsPage(main, app) {
  const engine = h('p', { className: 'muted', 'data-testid': 'engine-state' });
  const tbody = h('tbody');
  const error = h('p', { className: 'error', role: 'alert' });
  const table = h(
    'table',
    { className: 'groups', 'data-testid': 'groups-table' },
    h('caption', { className: 'sr-only' }, 'Scaling groups'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Group'),
        h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col', className: 'num', title: 'current / ready / desired' }, 'Replicas (cur / ready / want)'),
        h('th', { scope: 'col', className: 'num' }, 'Bounds'),
        h('th', { scope: 'col' }, 'Last action'),
        h('th', { scope: 'col' }, 'Errors'),
      ),
    ),
    tbody,
  );
  replace(main, h('h1', {}, 'Groups'), engine, error, table);
  let stopped = false;
  const p = poll(async () => {
    try {
      const r = await api.groups();
      if (stopped) return;
      error.textContent = '';
      engine.textContent =
        (r.enabled === false ? 'The engine is disabled: no group scales.' : `${r.total} group(s); the engine is enabled.`) +
        (r.next_cursor ? ` The table shows the first ${r.groups.length}.` : '');
      const groups = [...r.groups].sort((a, b) => a.name.localeCompare(b.name));
      replace(
        tbody,
        groups.length ? groups.map(row) : h('tr', {}, h('td', { colspan: 6, className: 'muted' }, 'No groups.')),
      );
    } catch (e) {
      if (e.status !== 401) error.textContent = e.message;
    }
  }, 5000);
  return {
    stop() {
      stopped = true;
      p.stop();
    },
  };
}
