// The group chart (uPlot): the metric(s) on the left axis, desired and ready replicas on the
// right one, and each forecast's estimate at the time it is due, as points.

import uPlot from 'uplot';

const METRIC_COLORS = ['#1f6feb', '#8250df', '#0a7f6f', '#bf3989'];
const FORECAST_COLORS = ['#d4a72c', '#e16f24', '#a371f7', '#57ab5a'];

const secs = (s) => {
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t / 1000;
};

/** The series API answer as uPlot's aligned columns, plus the series descriptions. */
export function toColumns(series) {
  const points = (series && series.points) || [];
  const forecasts = (series && series.forecasts) || [];
  const metrics = [];
  for (const p of points) {
    for (const m of Object.keys(p.metrics || {})) if (!metrics.includes(m)) metrics.push(m);
  }
  const fmetrics = [];
  for (const f of forecasts) if (!fmetrics.includes(f.metric)) fmetrics.push(f.metric);

  // One row per distinct time: a sample's, or a forecast's due time.
  const rows = new Map();
  const row = (t) => {
    if (!rows.has(t)) rows.set(t, { metrics: {}, forecast: {} });
    return rows.get(t);
  };
  for (const p of points) {
    const t = secs(p.at);
    if (t == null) continue;
    const r = row(t);
    r.point = p;
  }
  for (const f of forecasts) {
    const t = secs(f.due || f.serves_from || f.made);
    if (t == null || f.estimate == null) continue;
    row(t).forecast[f.metric] = f.estimate;
  }
  const xs = [...rows.keys()].sort((a, b) => a - b);
  const cols = [xs];
  for (const m of metrics) {
    cols.push(xs.map((t) => {
      const p = rows.get(t).point;
      const v = p && p.metrics ? p.metrics[m] : undefined;
      return v == null ? null : v;
    }));
  }
  for (const m of fmetrics) cols.push(xs.map((t) => rows.get(t).forecast[m] ?? null));
  for (const k of ['desired', 'ready']) {
    cols.push(xs.map((t) => {
      const p = rows.get(t).point;
      return p && p[k] != null ? p[k] : null;
    }));
  }
  return { cols, metrics, fmetrics };
}

function seriesOpts(metrics, fmetrics) {
  const s = [{}];
  metrics.forEach((m, i) =>
    s.push({ label: m, scale: 'metric', stroke: METRIC_COLORS[i % METRIC_COLORS.length], width: 2, spanGaps: true, points: { show: false } }),
  );
  fmetrics.forEach((m, i) =>
    s.push({
      label: `${m} forecast`,
      scale: 'metric',
      stroke: FORECAST_COLORS[i % FORECAST_COLORS.length],
      width: 1,
      dash: [6, 4],
      spanGaps: true,
      points: { show: true, size: 6, fill: FORECAST_COLORS[i % FORECAST_COLORS.length] },
    }),
  );
  s.push({ label: 'desired replicas', scale: 'replicas', stroke: '#cf222e', width: 2, spanGaps: true, points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) });
  s.push({ label: 'ready replicas', scale: 'replicas', stroke: '#1a7f37', width: 2, dash: [2, 3], spanGaps: true, points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) });
  return s;
}

/** A live chart in `el`; `update(series)` redraws it (re-created when the set of series changes). */
export function groupChart(el) {
  let plot = null;
  let shape = '';
  const width = () => Math.max(320, Math.floor(el.clientWidth || 800));
  const onResize = () => {
    if (plot) plot.setSize({ width: width(), height: 260 });
  };
  window.addEventListener('resize', onResize);
  return {
    update(series) {
      const { cols, metrics, fmetrics } = toColumns(series);
      const key = JSON.stringify([metrics, fmetrics]);
      if (plot && key === shape) {
        plot.setData(cols);
        return;
      }
      if (plot) plot.destroy();
      shape = key;
      plot = new uPlot(
        {
          width: width(),
          height: 260,
          series: seriesOpts(metrics, fmetrics),
          scales: { x: { time: true }, replicas: { range: (u, min, max) => [0, Math.max(1, (max ?? 1) + 1)] } },
          axes: [
            {},
            { scale: 'metric', label: metrics.length === 1 ? metrics[0] : 'metric', size: 60 },
            { scale: 'replicas', label: 'replicas', side: 1, grid: { show: false }, size: 50 },
          ],
          legend: { live: false },
          cursor: { drag: { x: false, y: false } },
        },
        cols,
        el,
      );
    },
    destroy() {
      window.removeEventListener('resize', onResize);
      if (plot) plot.destroy();
      plot = null;
    },
  };
}
