// A group: its state, a live chart (metric, desired and ready replicas, forecasts), the
// operator's actions, and the activity timeline with each decision's reasons.

import { api } from '../api.js';
import { ago, badge, h, num, replace, time } from '../dom.js';
import { groupChart } from '../chart.js';
import { poll } from '../poll.js';
import { decisionOf, renderDecision, summaryOf } from '../reasons.js';
import { errorText, lastAction, stateBadge } from '../state.js';

const SOURCES = { file: 'the config file', database: 'the database (API)' };
const STATUS_KIND = { succeeded: 'ok', failed: 'error', pending: 'warn', dry_run: 'info' };

function activityItem(a) {
  const reasons = renderDecision(a.decision);
  const summary = summaryOf(a.decision);
  return h(
    'li',
    { className: `activity activity-${a.status}`, 'data-testid': 'activity', 'data-id': a.id },
    h(
      'div',
      { className: 'activity-head' },
      time(a.started),
      ' ',
      h('strong', { className: 'activity-change' }, `${a.from} → ${a.to}`),
      ' ',
      badge(String(a.status).replaceAll('_', ' '), STATUS_KIND[a.status] || 'neutral', {
        'data-testid': 'activity-status',
      }),
      ' ',
      h('span', { className: 'actor', 'data-testid': 'activity-actor' }, a.actor ? `by ${a.actor}` : 'by the engine'),
    ),
    a.reason ? h('p', { className: 'activity-reason', 'data-testid': 'activity-reason' }, a.reason) : null,
    a.error ? h('p', { className: 'error small', 'data-testid': 'activity-error' }, a.error) : null,
    summary && !a.reason && !decisionOf(a.decision) ? h('p', { className: 'summary small' }, summary) : null,
    reasons,
  );
}

function fact(label, value, testid) {
  return [h('dt', {}, label), h('dd', testid ? { 'data-testid': testid } : {}, value)];
}

function facts(g) {
  const cd = g.cooldowns || {};
  const err = errorText(g.last_error);
  const now = Date.now();
  const future = (t) => t && Date.parse(t) > now;
  const last = lastAction(g);
  return h(
    'dl',
    { className: 'facts-grid' },
    fact('State', stateBadge(g)),
    fact('Replicas', `${g.current ?? '—'} current · ${g.ready ?? '—'} ready · ${g.desired ?? '—'} desired`, 'group-replicas'),
    fact('Bounds', `${g.min}–${g.max}${g.dry_run ? ' (dry run)' : ''}`),
    fact('Last evaluation', g.last_evaluation ? [time(g.last_evaluation), ` (${ago(g.last_evaluation)})`] : '—'),
    fact('Last decision', last ? h('span', { className: 'clamp', title: last }, last) : '—'),
    fact(
      'Cooldowns',
      [
        future(cd.scale_out_until) ? `scale-out until ${new Date(cd.scale_out_until).toLocaleTimeString()}` : null,
        future(cd.scale_in_until) ? `scale-in until ${new Date(cd.scale_in_until).toLocaleTimeString()}` : null,
      ]
        .filter(Boolean)
        .join(' · ') || 'none',
    ),
    fact(
      'Errors',
      g.consecutive_errors > 0 ? `${g.consecutive_errors} in a row${err ? `: ${err}` : ''}` : err ? `last: ${err}` : 'none',
    ),
    g.lease
      ? fact('Lease', g.lease.holder ? `held by ${g.lease.holder} (epoch ${g.lease.epoch})` : JSON.stringify(g.lease))
      : null,
    g.source ? fact('Defined in', SOURCES[g.source] || String(g.source)) : null,
  );
}

/** The operator's controls: built once, their labels kept in step with the group. */
function actions(app, name, refresh) {
  const status = h('p', { className: 'error', role: 'alert', 'data-testid': 'action-error' });
  const run = async (what, f, done) => {
    status.textContent = '';
    try {
      await f();
      app.say(done, 'ok');
      refresh();
    } catch (e) {
      if (e.status !== 401) status.textContent = `${what}: ${e.message}`;
    }
  };
  let group = null;
  const toggle = h('button', {
    type: 'button',
    className: 'secondary',
    'data-testid': 'toggle-enabled',
    onclick: () =>
      group.enabled
        ? run('Disable', () => api.disable(name), `${name} disabled`)
        : run('Enable', () => api.enable(name), `${name} enabled`),
  });
  const pauseOut = h('button', {
    type: 'button',
    className: 'secondary',
    'data-testid': 'toggle-pause-out',
    onclick: () => {
      const p = group.paused || {};
      run('Pause', () => api.pause(name, !!p.scale_in, !p.scale_out), p.scale_out ? 'Scale-out resumed' : 'Scale-out paused');
    },
  });
  const pauseIn = h('button', {
    type: 'button',
    className: 'secondary',
    'data-testid': 'toggle-pause-in',
    onclick: () => {
      const p = group.paused || {};
      run('Pause', () => api.pause(name, !p.scale_in, !!p.scale_out), p.scale_in ? 'Scale-in resumed' : 'Scale-in paused');
    },
  });

  const replicas = h('input', { id: 'scale-replicas', type: 'number', min: 0, step: 1, required: true, inputmode: 'numeric' });
  const hint = h('p', { className: 'muted small hint', id: 'scale-hint' });
  const reason = h('input', { id: 'scale-reason', type: 'text', required: true, maxlength: 500, autocomplete: 'off' });
  const force = h('input', { id: 'scale-force', type: 'checkbox' });
  // Forcing a count outside min/max needs an admin token: operators do not get the box.
  const forceField = app.isAdmin()
    ? h('div', { className: 'field check' }, force, h('label', { for: 'scale-force' }, 'Force outside min/max'))
    : null;
  const formError = h('p', { className: 'error', role: 'alert', 'data-testid': 'scale-error' });
  const form = h(
    'form',
    {
      className: 'scale-form',
      id: 'scale-form',
      hidden: true,
      'data-testid': 'scale-form',
      'aria-label': 'Manual scale',
      onsubmit: async (ev) => {
        ev.preventDefault();
        formError.textContent = '';
        const n = Number(replicas.value);
        if (!Number.isInteger(n) || n < 0) {
          formError.textContent = 'Replicas must be a whole number.';
          replicas.focus();
          return;
        }
        submit.disabled = true;
        try {
          await api.scale(name, n, reason.value.trim(), force.checked);
          app.say(`Scaling ${name} to ${n} requested`, 'ok');
          form.hidden = true;
          scaleBtn.setAttribute('aria-expanded', 'false');
          reason.value = '';
          force.checked = false;
          refresh();
        } catch (e) {
          if (e.status !== 401) {
            formError.textContent = e.message;
            const bad = e.field === 'reason' ? reason : e.field === 'replicas' ? replicas : null;
            if (bad) bad.focus();
          }
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('div', { className: 'field' }, h('label', { for: 'scale-replicas' }, 'Replicas'), replicas),
    h('div', { className: 'field grow' }, h('label', { for: 'scale-reason' }, 'Reason'), reason),
    forceField,
    hint,
    h('div', { className: 'field buttons' }),
    formError,
  );
  const submit = h('button', { type: 'submit', 'data-testid': 'scale-submit' }, 'Scale');
  const cancel = h(
    'button',
    {
      type: 'button',
      className: 'secondary',
      onclick: () => {
        form.hidden = true;
        scaleBtn.setAttribute('aria-expanded', 'false');
        scaleBtn.focus();
      },
    },
    'Cancel',
  );
  form.querySelector('.buttons').append(submit, cancel);
  const scaleBtn = h(
    'button',
    {
      type: 'button',
      'data-testid': 'scale-button',
      'aria-controls': 'scale-form',
      'aria-expanded': 'false',
      onclick: () => {
        form.hidden = !form.hidden;
        scaleBtn.setAttribute('aria-expanded', String(!form.hidden));
        if (!form.hidden) {
          if (!replicas.value && group) replicas.value = group.desired ?? group.current ?? '';
          replicas.focus();
        }
      },
    },
    'Scale…',
  );
  const el = h(
    'section',
    { className: 'card actions', 'aria-labelledby': 'actions-title', 'data-testid': 'actions' },
    h('h2', { id: 'actions-title' }, 'Actions'),
    h('div', { className: 'buttons' }, scaleBtn, toggle, pauseOut, pauseIn),
    form,
    status,
  );
  return {
    el,
    update(g) {
      group = g;
      const p = g.paused || {};
      toggle.textContent = g.enabled ? 'Disable' : 'Enable';
      pauseOut.textContent = p.scale_out ? 'Resume scale-out' : 'Pause scale-out';
      pauseIn.textContent = p.scale_in ? 'Resume scale-in' : 'Pause scale-in';
      replicas.max = app.isAdmin() ? '' : String(g.max);
      if (!app.isAdmin()) replicas.min = String(g.min);
      hint.textContent = `Between ${g.min} and ${g.max}. The next evaluation decides as usual: the engine may change it again.`;
    },
  };
}

export function groupPage(main, app, name) {
  const error = h('p', { className: 'error', role: 'alert', 'data-testid': 'group-error' });
  const factsEl = h('div', { 'data-testid': 'group-facts' });
  const chartEl = h('div', { className: 'chart', 'data-testid': 'chart' });
  const chartNote = h('p', { className: 'muted small', 'data-testid': 'chart-note' });
  const timeline = h('ol', { className: 'timeline', 'data-testid': 'timeline' });
  const timelineNote = h('p', { className: 'muted' });
  const more = h('button', { type: 'button', className: 'secondary', 'data-testid': 'load-more', hidden: true }, 'Load more');

  // Activities by id: the newest page is re-read at each refresh; "Load more" adds older ones.
  const acts = new Map();
  let cursor = null;
  let loadedMore = false;
  let shown = '';
  const renderTimeline = () => {
    const list = [...acts.values()].sort((a, b) => b.id - a.id);
    // Redrawn only when something changed (a new activity, a status): keeps text selectable.
    const key = JSON.stringify(list);
    if (key !== shown) {
      shown = key;
      replace(timeline, list.map(activityItem));
    }
    timelineNote.textContent = list.length ? '' : 'No activity yet.';
    more.hidden = cursor == null;
  };
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const r = await api.activities(name, cursor);
      for (const a of r.activities) acts.set(a.id, a);
      cursor = r.next_cursor ?? null;
      loadedMore = true;
      renderTimeline();
    } catch (e) {
      if (e.status !== 401) error.textContent = e.message;
    } finally {
      more.disabled = false;
    }
  });

  let chart = null;
  let p = null;
  let stopped = false;
  const ops = app.canOperate() ? actions(app, name, () => p && p.now()) : null;
  const refresh = async () => {
    try {
      const [g, series, page] = await Promise.all([api.group(name), api.series(name), api.activities(name)]);
      if (stopped) return;
      error.textContent = '';
      replace(factsEl, facts(g));
      if (ops) ops.update(g);
      if (!chart) chart = groupChart(chartEl);
      chart.update(series);
      const points = series.points || [];
      const last = points[points.length - 1];
      const measured = [...points].reverse().find((x) => x.metrics && Object.keys(x.metrics).length);
      chartNote.dataset.samples = String(points.length);
      chartNote.textContent = last
        ? `${points.length} samples; latest ${
            measured
              ? Object.entries(measured.metrics)
                  .map(([k, v]) => `${k} = ${num(v)}`)
                  .join(', ')
              : 'no metric yet'
          }, ${last.desired} desired, ${last.ready ?? '—'} ready; ${(series.forecasts || []).length} forecast(s).`
        : 'No samples yet.';
      for (const a of page.activities) acts.set(a.id, a);
      if (!loadedMore) cursor = page.next_cursor ?? null;
      renderTimeline();
    } catch (e) {
      if (e.status !== 401) error.textContent = e.status === 404 ? `No group named "${name}".` : e.message;
    }
  };

  replace(
    main,
    h('p', { className: 'crumbs' }, h('a', { href: '#/' }, '← Groups')),
    h('h1', { 'data-testid': 'group-name' }, name),
    error,
    h(
      'div',
      { className: 'group-layout' },
      h(
        'div',
        { className: 'group-side' },
        h('section', { className: 'card', 'aria-labelledby': 'state-title' }, h('h2', { id: 'state-title' }, 'State'), factsEl),
        ops ? ops.el : null,
      ),
      h(
        'div',
        { className: 'group-main' },
        h(
          'section',
          { className: 'card', 'aria-labelledby': 'chart-title' },
          h('h2', { id: 'chart-title' }, 'Metric, replicas and forecast'),
          chartEl,
          chartNote,
        ),
        h(
          'section',
          { className: 'card', 'aria-labelledby': 'timeline-title' },
          h('h2', { id: 'timeline-title' }, 'Activity'),
          timelineNote,
          timeline,
          more,
        ),
      ),
    ),
  );
  p = poll(refresh, 3000);
  return {
    stop() {
      stopped = true;
      p.stop();
      if (chart) chart.destroy();
    },
  };
}
