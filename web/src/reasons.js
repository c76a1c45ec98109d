// A decision record, readable: what each strategy recommended and why, then each rule that
// changed the count.
//
// The engine saves an activity's decision as {"decision": Decision, "summary", "observation"}
// where Decision (crates/core/src/decision.rs) has `strategies` [{kind, replicas,
// missing_data, reason}], `limits` [{rule, from, to, detail}] and `reasons` (the same, as data:
// [{rule, strategy?, from, to, numbers, text}]). A manual scale's record is {"manual": {actor,
// reason, force}, "reason": "manual", "summary"}. Any other shape is shown as it is.

import { h, num } from './dom.js';

const RULES = {
  strategy: 'strategy',
  tolerance: 'within tolerance',
  missing_data: 'missing data',
  fallback: 'fallback',
  out_of_bounds: 'out of bounds',
  stabilization: 'stabilization window',
  business_hours: 'business hours',
  rate_limit: 'rate limit',
  max_step: 'max step',
  cooldown: 'cooldown',
  min: 'minimum',
  max: 'maximum',
  min_max: 'min/max',
  budget: 'budget',
};

function ruleName(r) {
  return RULES[r] || String(r).replaceAll('_', ' ');
}

/** The Decision inside a record, whatever the nesting. */
export function decisionOf(record) {
  if (!record || typeof record !== 'object') return null;
  if (record.decision && typeof record.decision === 'object' && !Array.isArray(record.decision)) {
    return record.decision;
  }
  if (Array.isArray(record.strategies) || Array.isArray(record.reasons)) return record;
  return null;
}

export function summaryOf(record) {
  if (!record || typeof record !== 'object') return null;
  if (typeof record.summary === 'string') return record.summary;
  return null;
}

function counts(from, to) {
  if (from == null && to == null) return 'no opinion';
  if (from == null) return `→ ${to}`;
  if (to == null) return `${from} → no opinion`;
  return `${from} → ${to}`;
}

/** One <li> per reason: strategies first, then behavior rules, as the engine orders them. */
function reasonItems(d) {
  if (Array.isArray(d.reasons) && d.reasons.length) {
    return d.reasons.map((r) => {
      const who = r.rule === 'strategy' ? r.strategy || 'strategy' : ruleName(r.rule);
      const kind = r.rule === 'strategy' ? 'strategy' : 'rule';
      return h(
        'li',
        { className: `reason reason-${kind}`, 'data-testid': 'reason' },
        h('span', { className: 'reason-who' }, who),
        ' ',
        h('span', { className: 'reason-counts' }, counts(r.from, r.to)),
        r.text ? [': ', h('span', { className: 'reason-text' }, r.text)] : null,
      );
    });
  }
  const items = [];
  for (const s of d.strategies || []) {
    items.push(
      h(
        'li',
        { className: 'reason reason-strategy', 'data-testid': 'reason' },
        h('span', { className: 'reason-who' }, s.kind),
        ' ',
        h('span', { className: 'reason-counts' }, s.replicas == null ? 'no opinion' : `→ ${s.replicas}`),
        s.missing_data ? ' (missing data)' : null,
        s.reason ? [': ', h('span', { className: 'reason-text' }, s.reason)] : null,
      ),
    );
  }
  for (const l of d.limits || []) {
    items.push(
      h(
        'li',
        { className: 'reason reason-rule', 'data-testid': 'reason' },
        h('span', { className: 'reason-who' }, ruleName(l.rule)),
        ' ',
        h('span', { className: 'reason-counts' }, counts(l.from, l.to)),
        l.detail ? [': ', h('span', { className: 'reason-text' }, l.detail)] : null,
      ),
    );
  }
  return items;
}

/** The reasons of a decision record as a list, with the metrics observed; null when none. */
export function renderDecision(record) {
  const d = decisionOf(record);
  if (!d && record && typeof record.manual === 'object' && record.manual) {
    // A manual scale ({"manual": {actor, reason, force}}): the actor and reason are shown
    // with the activity; only "forced" is left to say.
    return record.manual.force ? h('p', { className: 'facts' }, 'forced outside min/max') : null;
  }
  if (!d) {
    if (record == null || (typeof record === 'object' && Object.keys(record).length === 0)) {
      return null;
    }
    // Some other record (a manual action's, say): shown as it is, folded.
    return h(
      'details',
      { className: 'raw' },
      h('summary', {}, 'Record'),
      h('pre', {}, JSON.stringify(record, null, 2)),
    );
  }
  const parts = [];
  const items = reasonItems(d);
  if (items.length) parts.push(h('ul', { className: 'reasons', 'aria-label': 'Reasons' }, items));
  const facts = [];
  if (d.recommended_replicas != null) facts.push(`strategies recommended ${d.recommended_replicas}`);
  if (d.desired_replicas != null) facts.push(`desired ${d.desired_replicas}`);
  if (d.min != null && d.max != null) facts.push(`bounds ${d.min}–${d.max}`);
  if (d.limited_by) facts.push(`limited by ${ruleName(d.limited_by)}`);
  if (d.dry_run) facts.push('dry run');
  const obs = record.observation;
  if (obs && obs.metrics && Object.keys(obs.metrics).length) {
    facts.push(
      Object.entries(obs.metrics)
        .map(([k, v]) => `${k} = ${num(v)}`)
        .join(', '),
    );
  }
  if (obs && obs.metric_errors && Object.keys(obs.metric_errors).length) {
    facts.push(
      `metric errors: ${Object.entries(obs.metric_errors)
        .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join('; ')}`,
    );
  }
  if (facts.length) parts.push(h('p', { className: 'facts' }, facts.join(' · ')));
  return parts.length ? h('div', { className: 'decision' }, parts) : null;
}
