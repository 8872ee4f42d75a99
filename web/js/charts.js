// Small inline-SVG charts of time buckets (no library, nothing from outside). Colors come from
// classes in app.css, so they follow the light and dark themes; the CSP forbids style
// attributes, and SVG presentation attributes are not needed for anything but geometry.

import { h } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 170;
const PAD = { left: 48, right: 8, top: 10, bottom: 22 };

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// Every bucket start from `fromMs` to `toMs` (aligned to the epoch like the server's buckets),
// with the server's groups where it had requests and zeros in between: a quiet hour is a real
// zero, and gaps would otherwise squeeze the time axis.
export function fillBuckets(groups, bucketMs, fromMs, toMs) {
  const byStart = new Map(groups.map((g) => [new Date(g.key).getTime(), g]));
  const first = Math.floor((fromMs ?? Math.min(...byStart.keys(), toMs)) / bucketMs) * bucketMs;
  const out = [];
  for (let at = first; at <= toMs && out.length < 2000; at += bucketMs) {
    out.push({ at, group: byStart.get(at) || null });
  }
  return out;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * power >= value);
  return step * power;
}

// Days for day buckets; hours within a day; both when the buckets span more than a day (24 hourly
// buckets start and end at the same hour).
function axisLabel(at, bucketMs, span = 0) {
  const date = new Date(at);
  if (bucketMs >= 86_400_000) return date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  if (span >= 12 * 3_600_000) return date.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

function frame(maxValue, format, buckets, bucketMs) {
  const bottom = HEIGHT - PAD.bottom;
  const last = buckets[buckets.length - 1];
  const span = last ? last.at - buckets[0].at : 0;
  return [
    svg('line', { class: 'axis', x1: PAD.left, y1: bottom, x2: WIDTH - PAD.right, y2: bottom }),
    svg('line', { class: 'grid-line', x1: PAD.left, y1: PAD.top, x2: WIDTH - PAD.right, y2: PAD.top }),
    svg('text', { class: 'tick', x: PAD.left - 4, y: PAD.top + 4, 'text-anchor': 'end' }, format(maxValue)),
    svg('text', { class: 'tick', x: PAD.left - 4, y: bottom, 'text-anchor': 'end' }, '0'),
    buckets.length ? svg('text', { class: 'tick', x: PAD.left, y: HEIGHT - 6 }, axisLabel(buckets[0].at, bucketMs, span)) : null,
    buckets.length > 1 ? svg('text', { class: 'tick', x: WIDTH - PAD.right, y: HEIGHT - 6, 'text-anchor': 'end' }, axisLabel(last.at, bucketMs, span)) : null,
  ];
}

function spanOf(buckets) {
  return buckets.length ? buckets[buckets.length - 1].at - buckets[0].at : 0;
}

function legend(series) {
  return h('div.legend', series.map((s) => h('span.legend-item', h('span.swatch', { class: s.cls }), s.label)));
}

// Stacked bars: `series` [{label, cls, value(group)}], bottom to top.
export function barChart(buckets, bucketMs, series, { format = String, title = () => '' } = {}) {
  const totals = buckets.map((b) => (b.group ? series.reduce((sum, s) => sum + s.value(b.group), 0) : 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, buckets.length);
  const barW = Math.max(1, slot * 0.8);
  const bars = buckets.map((bucket, i) => {
    if (!bucket.group) return null;
    let y = HEIGHT - PAD.bottom;
    const x = PAD.left + i * slot + (slot - barW) / 2;
    const parts = series.map((s) => {
      const height = (s.value(bucket.group) / max) * plotH;
      y -= height;
      return height > 0 ? svg('rect', { class: `bar ${s.cls}`, x: x.toFixed(1), y: y.toFixed(1), width: barW.toFixed(1), height: height.toFixed(1) }) : null;
    });
    return svg('g', {}, svg('title', {}, `${axisLabel(bucket.at, bucketMs, spanOf(buckets))} · ${title(bucket.group)}`), parts);
  });
  return h('figure.chart',
    svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img' }, frame(max, format, buckets, bucketMs), bars),
    legend(series));
}

// Lines: `series` [{label, cls, value(group)}]; buckets without requests break the line.
export function lineChart(buckets, bucketMs, series, { format = String, title = () => '' } = {}) {
  const values = buckets.flatMap((b) => (b.group ? series.map((s) => s.value(b.group)) : []));
  const max = niceMax(Math.max(0, ...values));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, buckets.length);
  const xOf = (i) => PAD.left + i * slot + slot / 2;
  const yOf = (v) => HEIGHT - PAD.bottom - (v / max) * plotH;
  const lines = series.map((s) => {
    const runs = [[]];
    buckets.forEach((bucket, i) => {
      if (bucket.group) runs[runs.length - 1].push(`${xOf(i).toFixed(1)},${yOf(s.value(bucket.group)).toFixed(1)}`);
      else if (runs[runs.length - 1].length) runs.push([]);
    });
    return runs.filter((r) => r.length > 1).map((points) => svg('polyline', { class: `line ${s.cls}`, points: points.join(' ') }));
  });
  const dots = buckets.map((bucket, i) => (bucket.group
    ? svg('g', {}, svg('title', {}, `${axisLabel(bucket.at, bucketMs, spanOf(buckets))} · ${title(bucket.group)}`),
      series.map((s) => svg('circle', { class: `dot ${s.cls}`, cx: xOf(i).toFixed(1), cy: yOf(s.value(bucket.group)).toFixed(1), r: 2.5 })))
    : null));
  return h('figure.chart',
    svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img' }, frame(max, format, buckets, bucketMs), lines, dots),
    legend(series));
}
