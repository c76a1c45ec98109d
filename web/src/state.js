// A group's state in words, shared by the table and the group page.

import { badge } from './dom.js';
import { decisionOf, summaryOf } from './reasons.js';

export function errorText(e) {
  if (e == null) return null;
  if (typeof e === 'string') return e;
  if (typeof e === 'object' && e.message) return e.message;
  return JSON.stringify(e);
}

/** [word, badge kind]: disabled, paused, failing, dry run, running, idle. */
export function stateOf(g) {
  if (!g.enabled) return ['disabled', 'neutral'];
  const p = g.paused || {};
  if (p.scale_in && p.scale_out) return ['paused', 'warn'];
  if (p.scale_out) return ['scale-out paused', 'warn'];
  if (p.scale_in) return ['scale-in paused', 'warn'];
  if (g.consecutive_errors > 0) return ['failing', 'error'];
  if (g.running === false) return ['not running here', 'neutral'];
  if (g.dry_run) return ['dry run', 'info'];
  return ['running', 'ok'];
}

export function stateBadge(g) {
  const [word, kind] = stateOf(g);
  return badge(word, kind, { 'data-testid': 'group-state' });
}

/** The last decision in one line: its summary, else "current → desired". */
export function lastAction(g) {
  const rec = g.last_decision;
  const s = summaryOf(rec);
  if (s) return s;
  const d = decisionOf(rec);
  if (d && d.current_replicas != null && d.desired_replicas != null) {
    return `${d.current_replicas} → ${d.desired_replicas}`;
  }
  return null;
}
