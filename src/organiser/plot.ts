// An SVG figure of normalised score over session time: one panel per environment, one line per
// participant (best score so far, or the last score where the last one counts), in the manner of the
// RE-Bench paper's figures. Ticks, the best-so-far steps and number formats come from the session
// view's chart (core/chart.ts), so both read the same. Black text on white, sized for print.
import { bestSoFar, formatTick, niceTicks, timeTicks } from '../core/chart';
import type { ScoreLogEntry } from '../core/runnerProtocol';
import { formatNormalised, formatScore, hasScore, normalise, organiserEntries, type Aggregation, type Direction } from '../core/scores';
import type { HostResult } from './collect';

/** Colour-blind-safe colours (Okabe and Ito), then dash patterns, so lines stay apart in grey print too. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
export const DASHES = ['', '7 3', '2 3', '9 3 2 3'];

/** Normalised scores are drawn within this range; anything beyond sits on its edge. */
const Y_LIMIT: [number, number] = [-1.5, 2.5];

const FONT = 'Helvetica, Arial, sans-serif';
/** A white outline behind labels that sit on the plot, so lines crossing them do not strike them through. */
const HALO = { stroke: '#fff', 'stroke-width': 3, 'paint-order': 'stroke', 'stroke-linejoin': 'round' };
const PANEL_PLOT_W = 380;
const PANEL_PLOT_H = 230;
const LEGEND_W = 210;
const LEGEND_ROW = 17;
const PANEL_GAP = 36;
const MARGIN = 24;

export interface SeriesPoint {
  elapsedS: number;
  normalised: number;
  /** The raw score, for the tooltip. */
  score: number;
}

export interface Series {
  participant: string;
  host: string;
  /** Steps of the line in time order: where the best (or the last) score changed. */
  points: SeriesPoint[];
  /** Session time the line is carried to (the session's end, or now). */
  endS: number;
  intact: boolean;
  integrityDetail: string | null;
  /** The session had not ended when it was read. */
  running: boolean;
  /** Session time when the participant gave up (the session record), or null. */
  gaveUpS: number | null;
  countedNormalised: number | null;
  colour: string;
  dash: string;
}

export interface Panel {
  environment: string;
  title: string;
  direction: Direction;
  aggregation: Aggregation;
  startingScore: number;
  referenceScore: number;
  timeLimitS: number;
  series: Series[];
}

export interface PlotModel {
  panels: Panel[];
  /** Hosts with nothing to draw: "name (user@host:port): why". */
  missing: string[];
  generatedAt: string;
}

/** The steps of one participant's line: best so far, or every scored run where the last one counts. */
export function progressSteps(entries: readonly ScoreLogEntry[], direction: Direction, aggregation: Aggregation): Array<{ elapsedS: number; score: number }> {
  if (aggregation === 'best') return bestSoFar(entries, direction).map((s) => ({ elapsedS: s.elapsedS, score: s.score }));
  return entries.filter((e) => e.counts && hasScore(e)).map((e) => ({ elapsedS: e.elapsed_s, score: e.score as number }));
}

/** The n-th line's style within a panel: every colour solid first, then each again with a dash pattern. */
export function seriesStyle(n: number): { colour: string; dash: string } {
  return { colour: PALETTE[n % PALETTE.length]!, dash: DASHES[Math.floor(n / PALETTE.length) % DASHES.length]! };
}

export function plotModel(hosts: readonly HostResult[], generatedAt: string): PlotModel {
  const panels = new Map<string, Panel>();
  const missing: string[] = [];
  for (const h of hosts) {
    const env = h.status?.environment;
    if (!h.ok || !h.status || !env) {
      missing.push(`${h.spec.participant} (${h.label}): ${h.error ?? 'not read'}`);
      continue;
    }
    let panel = panels.get(env.id);
    if (!panel) {
      panel = {
        environment: env.id,
        title: env.visible && env.visible !== 'all' ? `${env.title} (hidden scores)` : env.title,
        direction: env.direction,
        aggregation: env.aggregation,
        startingScore: env.starting_score,
        referenceScore: env.reference_score,
        timeLimitS: env.time_limit_s,
        series: [],
      };
      panels.set(env.id, panel);
    }
    panel.timeLimitS = Math.max(panel.timeLimitS, env.time_limit_s);
    const points = progressSteps(organiserEntries(h.entries, h.hidden), env.direction, env.aggregation).map((s) => ({
      elapsedS: s.elapsedS,
      score: s.score,
      normalised: normalise(s.score, env.starting_score, env.reference_score),
    }));
    const last = points[points.length - 1];
    panel.series.push({
      participant: h.spec.participant,
      host: h.label,
      points,
      endS: Math.max(last?.elapsedS ?? 0, Math.min(h.status.elapsed_s, env.time_limit_s)),
      intact: h.integrity === 'intact',
      integrityDetail: h.integrityDetail,
      running: h.status.state !== 'ended',
      gaveUpS: h.records?.records.filter((r) => r.kind === 'give_up').pop()?.elapsed_s ?? null,
      // The last step is the best so far, or the last score: the one that counts either way.
      countedNormalised: last ? last.normalised : null,
      // Styles are counted per panel (each has its own legend), so a panel's first lines are always solid.
      ...seriesStyle(panel.series.length),
    });
  }
  return { panels: [...panels.values()].sort((a, b) => a.environment.localeCompare(b.environment)), missing, generatedAt };
}

// --- drawing ---------------------------------------------------------------------------------------

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

type Attrs = Record<string, string | number | undefined>;

function el(tag: string, attrs: Attrs, ...children: string[]): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => ` ${k}="${escapeXml(typeof v === 'number' ? String(round(v)) : String(v))}"`)
    .join('');
  return children.length ? `<${tag}${a}>${children.join('')}</${tag}>` : `<${tag}${a}/>`;
}

function text(x: number, y: number, content: string, attrs: Attrs = {}): string {
  return el('text', { x, y, ...attrs }, escapeXml(content));
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function hoursLabel(seconds: number, stepS: number): string {
  return formatTick(seconds / 3600, stepS / 3600);
}

interface PanelGeometry {
  width: number;
  height: number;
}

function panelSize(panel: Panel): PanelGeometry {
  const legendRows = panel.series.length * 2 + 1;
  const plotTop = 44;
  const height = Math.max(plotTop + PANEL_PLOT_H + 44, plotTop + legendRows * LEGEND_ROW + 8);
  return { width: 62 + PANEL_PLOT_W + 18 + LEGEND_W, height };
}

function drawPanel(panel: Panel, x0: number, y0: number): { svg: string; clipped: boolean } {
  const plot = { x: x0 + 62, y: y0 + 44, w: PANEL_PLOT_W, h: PANEL_PLOT_H };
  const parts: string[] = [];

  // Domains: the whole session in hours; the starting (0) and reference (1) scores always in view.
  let xMax = Math.max(60, panel.timeLimitS);
  let lo = -0.1;
  let hi = 1.1;
  let clipped = false;
  for (const s of panel.series) {
    xMax = Math.max(xMax, s.endS);
    for (const p of s.points) {
      xMax = Math.max(xMax, p.elapsedS);
      if (p.normalised < Y_LIMIT[0] || p.normalised > Y_LIMIT[1]) clipped = true;
      lo = Math.min(lo, Math.max(p.normalised, Y_LIMIT[0]));
      hi = Math.max(hi, Math.min(p.normalised, Y_LIMIT[1]));
    }
  }
  const yTicks = niceTicks(lo, hi, 7);
  const xTickValues = timeTicks(xMax, 9).filter((t) => t <= xMax + 1e-9);
  const xStep = xTickValues.length > 1 ? xTickValues[1]! - xTickValues[0]! : 3600;
  const toX = (s: number) => plot.x + (Math.min(Math.max(s, 0), xMax) / xMax) * plot.w;
  const toY = (v: number) => plot.y + plot.h - ((Math.min(Math.max(v, yTicks.min), yTicks.max) - yTicks.min) / (yTicks.max - yTicks.min)) * plot.h;

  // Title.
  parts.push(text(x0, y0 + 14, truncate(`${panel.title} (${panel.environment})`, 70), { 'font-size': 14, 'font-weight': 'bold', class: 'panel-title' }));
  parts.push(
    text(
      x0,
      y0 + 30,
      `raw score: ${panel.direction} is better, the ${panel.aggregation} counts; starting ${formatScore(panel.startingScore)}, reference ${formatScore(panel.referenceScore)}`,
      { 'font-size': 11, fill: '#333' },
    ),
  );

  // Grid, ticks and axes.
  const grid: string[] = [];
  for (const t of yTicks.ticks) {
    const y = toY(t);
    grid.push(el('line', { x1: plot.x, y1: y, x2: plot.x + plot.w, y2: y, stroke: '#e3e3e3', 'stroke-width': 1 }));
    grid.push(text(plot.x - 6, y + 4, formatTick(t, yTicks.step), { 'font-size': 11, 'text-anchor': 'end', class: 'y-tick' }));
  }
  for (const t of xTickValues) {
    const x = toX(t);
    grid.push(el('line', { x1: x, y1: plot.y, x2: x, y2: plot.y + plot.h, stroke: '#f0f0f0', 'stroke-width': 1 }));
    grid.push(el('line', { x1: x, y1: plot.y + plot.h, x2: x, y2: plot.y + plot.h + 4, stroke: '#000', 'stroke-width': 1 }));
    grid.push(text(x, plot.y + plot.h + 16, hoursLabel(t, xStep), { 'font-size': 11, 'text-anchor': 'middle', class: 'x-tick' }));
  }
  parts.push(el('g', { class: 'grid' }, ...grid));

  // Starting (0) and reference (1) levels, and the time limit.
  for (const [value, label] of [
    [0, 'starting'],
    [1, 'reference'],
  ] as const) {
    const y = toY(value);
    parts.push(
      el('line', { x1: plot.x, y1: y, x2: plot.x + plot.w, y2: y, stroke: '#777', 'stroke-width': 1, 'stroke-dasharray': '4 3', class: `level ${label}` }),
    );
    // Early runs sit near the starting score and late ones near the reference: label each where its line
    // is least crowded (starting at the right end, reference at the left).
    const atRight = label === 'starting';
    parts.push(
      text(atRight ? plot.x + plot.w - 4 : plot.x + 4, y - 4, label, { 'font-size': 10, fill: '#555', 'text-anchor': atRight ? 'end' : 'start', ...HALO }),
    );
  }
  if (panel.timeLimitS < xMax) {
    const x = toX(panel.timeLimitS);
    parts.push(
      el('line', { x1: x, y1: plot.y, x2: x, y2: plot.y + plot.h, stroke: '#777', 'stroke-width': 1, 'stroke-dasharray': '2 2', class: 'time-limit' }),
    );
  }
  parts.push(
    el('path', {
      d: `M${round(plot.x)},${round(plot.y)}V${round(plot.y + plot.h)}H${round(plot.x + plot.w)}`,
      fill: 'none',
      stroke: '#000',
      'stroke-width': 1,
      class: 'axes',
    }),
  );
  parts.push(
    text(plot.x + plot.w / 2, plot.y + plot.h + 34, 'session time (hours, pauses excluded)', { 'font-size': 12, 'text-anchor': 'middle', class: 'x-title' }),
  );
  const yTitleX = x0 + 14;
  const yTitleY = plot.y + plot.h / 2;
  parts.push(
    text(yTitleX, yTitleY, 'normalised score', {
      'font-size': 12,
      'text-anchor': 'middle',
      transform: `rotate(-90 ${round(yTitleX)} ${round(yTitleY)})`,
      class: 'y-title',
    }),
  );

  // One line per participant: a step line that holds each score until the next change.
  const lines: string[] = [];
  const lineLabels: string[] = [];
  // Just above a line, or under it where the line runs along the top of the plot.
  const labelY = (y: number) => (y - 5 >= plot.y + 10 ? y - 5 : y + 14);
  for (const s of panel.series) {
    if (s.points.length === 0) continue;
    const d: string[] = [];
    s.points.forEach((p, i) => {
      const x = toX(p.elapsedS);
      const y = toY(p.normalised);
      if (i === 0) d.push(`M${round(x)},${round(y)}`);
      else d.push(`H${round(x)}V${round(y)}`);
    });
    const endX = toX(s.endS);
    d.push(`H${round(endX)}`);
    // A log that failed verification stays visible but paler, and says so at its end.
    if (!s.intact) {
      lineLabels.push(
        text(Math.min(endX, plot.x + plot.w) - 2, labelY(toY(s.points[s.points.length - 1]!.normalised)), '⚠ log not intact', {
          'font-size': 10,
          'font-weight': 'bold',
          fill: '#B00020',
          'text-anchor': 'end',
          ...HALO,
          class: 'line-warning',
          'data-participant': s.participant,
        }),
      );
    }
    const markers = s.points.map((p) => {
      const x = toX(p.elapsedS);
      const y = toY(p.normalised);
      const title = el(
        'title',
        {},
        escapeXml(`${s.participant}: ${formatScore(p.score)} (normalised ${formatNormalised(p.normalised)}) at ${hoursLabel(p.elapsedS, 60)} h`),
      );
      const style = { fill: s.intact ? s.colour : '#fff', stroke: s.colour, 'stroke-width': 1.5 };
      // A score beyond the drawn range sits on its edge as a triangle pointing the way it went.
      if (p.normalised < yTicks.min || p.normalised > yTicks.max) {
        const dy = p.normalised < yTicks.min ? 5 : -5;
        return el(
          'path',
          { d: `M${round(x - 4.5)},${round(y - dy)}L${round(x + 4.5)},${round(y - dy)}L${round(x)},${round(y + dy)}Z`, class: 'off-scale', ...style },
          title,
        );
      }
      return el('circle', { cx: x, cy: y, r: 3, ...style }, title);
    });
    lines.push(
      el(
        'g',
        { class: 'series', 'data-participant': s.participant, 'data-integrity': s.intact ? 'intact' : 'broken' },
        el('path', {
          d: d.join(''),
          fill: 'none',
          stroke: s.colour,
          'stroke-width': 2,
          'stroke-dasharray': s.dash,
          'stroke-linejoin': 'round',
          'stroke-opacity': s.intact ? undefined : 0.5,
        }),
        ...markers,
      ),
    );
  }
  parts.push(el('g', { class: 'lines' }, ...lines));
  // Drawn after every line, so no line crosses them.
  parts.push(el('g', { class: 'line-labels' }, ...lineLabels));

  // Legend: each participant with their counted normalised score; a log that fails verification is named.
  const lx = plot.x + plot.w + 18;
  const legend: string[] = [text(lx, plot.y + 4, 'participant (counted score)', { 'font-size': 11, fill: '#333' })];
  let ly = plot.y + 4 + LEGEND_ROW;
  const ordered = [...panel.series].sort((a, b) => (b.countedNormalised ?? -Infinity) - (a.countedNormalised ?? -Infinity));
  for (const s of ordered) {
    const value = s.countedNormalised === null ? 'no score' : formatScore(Number(s.countedNormalised.toFixed(3)));
    const item = [
      el('line', { x1: lx, y1: ly - 4, x2: lx + 26, y2: ly - 4, stroke: s.colour, 'stroke-width': 2, 'stroke-dasharray': s.dash }),
      el('circle', { cx: lx + 13, cy: ly - 4, r: 3, fill: s.intact ? s.colour : '#fff', stroke: s.colour, 'stroke-width': 1.5 }),
      text(lx + 32, ly, truncate(s.participant, 22), { 'font-size': 12 }),
      text(lx + LEGEND_W - 4, ly, value, { 'font-size': 12, 'text-anchor': 'end' }),
    ];
    // A line that stops early because its participant gave up says so, or a reader takes it for lost time.
    const gaveUp = s.gaveUpS === null ? '' : `, gave up at ${formatTick(s.gaveUpS / 3600, 0.1)} h`;
    const steps = `${s.points.length} ${s.points.length === 1 ? 'step' : 'steps'}${s.running ? ', session running' : ''}${gaveUp}`;
    const note = s.intact ? steps : `⚠ score log NOT intact${gaveUp}`;
    item.push(
      text(lx + 32, ly + LEGEND_ROW - 4, note, {
        'font-size': 10,
        fill: s.intact ? '#666' : '#B00020',
        'font-weight': s.intact ? undefined : 'bold',
        class: s.intact ? '' : 'integrity-warning',
      }),
    );
    legend.push(el('g', { class: 'legend-item', 'data-participant': s.participant, 'data-integrity': s.intact ? 'intact' : 'broken' }, ...item));
    ly += LEGEND_ROW * 2;
  }
  parts.push(el('g', { class: 'legend' }, ...legend));

  return { svg: el('g', { class: 'panel', 'data-environment': panel.environment }, ...parts), clipped };
}

/** The whole figure as a standalone SVG document. */
export function renderPlot(model: PlotModel): string {
  const columns = Math.min(2, Math.max(1, model.panels.length));
  const sizes = model.panels.map(panelSize);
  const panelW = Math.max(...sizes.map((s) => s.width), 62 + PANEL_PLOT_W + 18 + LEGEND_W);
  const rows: number[] = [];
  sizes.forEach((s, i) => {
    const r = Math.floor(i / columns);
    rows[r] = Math.max(rows[r] ?? 0, s.height);
  });
  const headerH = 56;
  const missingH = model.missing.length ? 24 + model.missing.length * 16 : 0;
  const bodyH = rows.reduce((a, b) => a + b, 0) + Math.max(0, rows.length - 1) * PANEL_GAP;
  const width = MARGIN * 2 + columns * panelW + (columns - 1) * PANEL_GAP;
  const height = MARGIN + headerH + (model.panels.length ? bodyH : 24) + missingH + MARGIN;

  const parts: string[] = [];
  parts.push(el('rect', { x: 0, y: 0, width, height, fill: '#fff' }));
  parts.push(text(MARGIN, MARGIN + 16, 'Normalised score over session time', { 'font-size': 18, 'font-weight': 'bold' }));
  parts.push(
    text(
      MARGIN,
      MARGIN + 36,
      '0 = starting solution, 1 = reference solution. Lines show the best score so far, or the latest score where the last one counts.',
      { 'font-size': 12, fill: '#333' },
    ),
  );
  let anyClipped = false;
  let y = MARGIN + headerH;
  model.panels.forEach((panel, i) => {
    const col = i % columns;
    const row = Math.floor(i / columns);
    if (col === 0 && row > 0) y += rows[row - 1]! + PANEL_GAP;
    const drawn = drawPanel(panel, MARGIN + col * (panelW + PANEL_GAP), y);
    anyClipped ||= drawn.clipped;
    parts.push(drawn.svg);
  });
  if (model.panels.length === 0) parts.push(text(MARGIN, MARGIN + headerH + 14, 'No host could be read: nothing to plot.', { 'font-size': 13 }));
  const footerY = MARGIN + headerH + (model.panels.length ? bodyH : 24) + 20;
  const notes: string[] = [];
  if (anyClipped) notes.push(`Normalised scores beyond ${Y_LIMIT[0]} … ${Y_LIMIT[1]} are drawn at the edge of the range.`);
  if (model.missing.length) {
    notes.push(...[`Not collected (${model.missing.length}):`, ...model.missing.map((m) => `  ${truncate(m, 150)}`)]);
  }
  notes.forEach((n, i) => parts.push(text(MARGIN, footerY + i * 16, n, { 'font-size': 11, fill: '#333', class: 'note' })));
  const total = height + (anyClipped ? 16 : 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${round(width)}" height="${round(total)}" viewBox="0 0 ${round(width)} ${round(total)}" font-family="${FONT}" role="img">`,
    el(
      'title',
      {},
      escapeXml(
        `Normalised score over session time, ${model.panels.length} environment${model.panels.length === 1 ? '' : 's'}, collected ${model.generatedAt}`,
      ),
    ),
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
