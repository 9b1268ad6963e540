// Time formatting and the geometry of the score history chart (scales, ticks, best-so-far line, point
// placement) for the session view. Pure: no DOM, no `vscode`.
import { formatDuration } from './clock';
import type { ScoreLogEntry } from './runnerProtocol';
import { formatScore, isBetter, type Aggregation, type Direction } from './scores';

/** A short running time: M:SS under an hour ("0:12"), H:MM:SS above. */
export function formatShortDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  if (s >= 3600) return formatDuration(s);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** A time-axis label: H:MM ("1:30"). */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}`;
}

export interface NiceTicks {
  /** Tick values at round numbers, ascending, evenly spaced by `step`, all within [min, max]. */
  ticks: number[];
  step: number;
  /** The range the ticks were made for (widened when it was empty). */
  min: number;
  max: number;
}

function ticksInside(lo: number, hi: number, step: number): number {
  return Math.floor(hi / step + 1e-9) - Math.ceil(lo / step - 1e-9) + 1;
}

/** The smallest step of 1, 2, 2.5 or 5 × 10^k that puts at most `maxTicks` ticks inside [lo, hi]. */
export function niceStep(lo: number, hi: number, maxTicks: number): number {
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  let magnitude = 10 ** Math.floor(Math.log10(span / Math.max(1, maxTicks)));
  for (;;) {
    for (const m of [1, 2, 2.5, 5]) {
      const step = m * magnitude;
      if (ticksInside(lo, hi, step) <= Math.max(2, maxTicks)) return step;
    }
    magnitude *= 10;
  }
}

/**
 * Ticks at round numbers inside [lo, hi], at most `maxTicks` of them. The range itself is not rounded
 * out to ticks, so the chart spends its height on the data rather than on empty margins.
 */
export function niceTicks(lo: number, hi: number, maxTicks: number): NiceTicks {
  let a = Math.min(lo, hi);
  let b = Math.max(lo, hi);
  if (a === b) {
    const pad = a === 0 ? 1 : Math.abs(a) * 0.1;
    a -= pad;
    b += pad;
  }
  const step = niceStep(a, b, maxTicks);
  const decimals = stepDecimals(step);
  const ticks: number[] = [];
  for (let i = Math.ceil(a / step - 1e-9); i * step <= b + step * 1e-9; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return { ticks, step, min: a, max: b };
}

function stepDecimals(step: number): number {
  // 2.5 × 10^k needs one more decimal than 10^k.
  for (let d = 0; d <= 12; d++) {
    if (Math.abs(Number(step.toFixed(d)) - step) < step * 1e-9) return d;
  }
  return 12;
}

/** Tick labels with as many decimals as the step needs, so "0.25, 0.5, 0.75" and not "0.3, 0.5, 0.8". */
export function formatTick(value: number, step: number): string {
  const d = Math.min(stepDecimals(step), 10);
  const abs = Math.abs(value);
  if (abs >= 1e6 || (abs > 0 && abs < 1e-6)) return value.toExponential(2);
  const text = value.toFixed(d);
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

const TIME_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200, 86400, 172800];

/** Session-time ticks (seconds) from 0 to at least maxSeconds, at round minutes or hours. */
export function timeTicks(maxSeconds: number, maxTicks: number): number[] {
  const max = Math.max(60, maxSeconds);
  const step = TIME_STEPS.find((s) => Math.floor(max / s) + 1 <= Math.max(2, maxTicks)) ?? Math.ceil(max / Math.max(1, maxTicks - 1) / 86400) * 86400;
  const ticks: number[] = [];
  for (let t = 0; t <= max + 1e-9; t += step) ticks.push(t);
  return ticks;
}

/**
 * The session time the chart spans. Early in a session the whole time limit would crowd every run into the
 * left edge, so the axis spans the latest run or now plus a margin (at least 30 minutes), rounded up to a
 * step so that it grows in a few jumps rather than every minute; once that reaches 80% of the time limit
 * the axis spans the whole session and the deadline is in view.
 */
export function timeWindowS(latestS: number, timeLimitS: number): number {
  const limit = Math.max(60, timeLimitS);
  const want = Math.max(30 * 60, Math.max(0, latestS) * 1.25 + 5 * 60);
  if (want >= limit * 0.8) return limit;
  const step = TIME_STEPS.find((st) => want / st <= 6) ?? 3600;
  const end = Math.ceil(want / step) * step;
  return end >= limit * 0.8 ? limit : end;
}

export interface BestStep {
  /** Position in the entries array. */
  pos: number;
  elapsedS: number;
  score: number;
}

/**
 * The entries where the best score so far improved, in log order. Only entries that count and have a
 * score take part: a "no score" run is never 0, and a run started after the deadline does not count.
 */
export function bestSoFar(entries: readonly ScoreLogEntry[], direction: Direction): BestStep[] {
  const steps: BestStep[] = [];
  let best: number | null = null;
  entries.forEach((e, pos) => {
    if (e.score === null || !e.counts) return;
    if (best === null || isBetter(e.score, best, direction)) {
      best = e.score;
      steps.push({ pos, elapsedS: e.elapsed_s, score: e.score });
    }
  });
  return steps;
}

export interface ChartInput {
  entries: readonly ScoreLogEntry[];
  direction: Direction;
  aggregation: Aggregation;
  startingScore: number;
  referenceScore: number;
  timeLimitS: number;
  /** The `index` of the entry that counts, or null. */
  countedIndex: number | null;
  /** Session time now, to carry the best-so-far line up to the present; null when unknown. */
  nowElapsedS: number | null;
}

export interface ChartSize {
  width: number;
  height: number;
  /** Fewer ticks and no x-axis title, for the narrow sidebar. */
  compact: boolean;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ChartPoint {
  /** Position in the entries array and the entry's own index. */
  pos: number;
  index: number;
  x: number;
  y: number;
  score: number;
  counts: boolean;
  counted: boolean;
  /** The best score so far improved here. */
  best: boolean;
  /** The score lies outside the drawn range and sits on its edge. */
  clipped: boolean;
}

export interface NoScorePoint {
  pos: number;
  index: number;
  x: number;
  y: number;
  counts: boolean;
}

export interface ChartTick {
  value: number;
  /** Pixel position along the axis (x for time ticks, y for score ticks). */
  at: number;
  label: string;
}

export interface ChartLine {
  y: number;
  value: number;
  label: string;
  /** Baseline of the label: just above the line, or under it when the line is at the top. */
  labelY: number;
  /** The label sits at the plot's right end ('end') or left end ('start'). */
  anchor: 'start' | 'end';
}

export interface ChartModel {
  width: number;
  height: number;
  plot: Rect;
  /** The band under the plot where "no score" runs are marked. */
  noScoreBand: Rect;
  xDomain: [number, number];
  /** Score range drawn; yDomain[0] < yDomain[1]. For lower-is-better, smaller values are drawn higher. */
  yDomain: [number, number];
  inverted: boolean;
  xTicks: ChartTick[];
  yTicks: ChartTick[];
  /**
   * The deadline. When it lies after the time the axis spans (early in the session), inside is false, x is
   * past the plot's right edge and label says where it is ("deadline 8:00 →") for the plot's right end.
   */
  deadline: { x: number; labelAnchor: 'start' | 'middle' | 'end'; inside: boolean; label: string };
  starting: ChartLine;
  reference: ChartLine;
  points: ChartPoint[];
  noScore: NoScorePoint[];
  /** Vertices of the best-so-far step line; empty when nothing has scored yet. */
  bestLine: Array<[number, number]>;
  yAxisTitle: string;
  xAxisTitle: string | null;
}

const FONT_CHAR_PX = 6.3; // average width of an 11px UI-font digit, to size the y-axis margin
/** The largest mark's radius (the ring of the counted run): marks are placed at least this far inside the plot. */
export const MARK_RADIUS = 7;
const LABEL_HEIGHT = 11;

interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

function overlaps(a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/**
 * Where a score line's label goes: at the preferred end of the line, just above it, unless runs are drawn
 * there; then under it, or at the other end. The place covering the fewest marks (and not the other label)
 * wins, so a run better than the reference never sits on the reference's label.
 */
function placeLabel(
  lineY: number,
  text: string,
  preferred: 'start' | 'end',
  plot: Rect,
  marks: readonly Box[],
  avoid: Box | undefined,
): { labelY: number; anchor: 'start' | 'end'; box: Box } {
  const width = text.length * FONT_CHAR_PX;
  const right = plot.x + plot.width;
  const other = preferred === 'start' ? 'end' : 'start';
  const candidates: { labelY: number; anchor: 'start' | 'end' }[] = [];
  for (const anchor of [preferred, other] as const) {
    for (const labelY of [lineY - 4, lineY + 12]) candidates.push({ labelY, anchor });
  }
  let best: { labelY: number; anchor: 'start' | 'end'; box: Box; cost: number } | undefined;
  for (const c of candidates) {
    const x0 = c.anchor === 'start' ? plot.x + 4 : right - 3 - width;
    const box: Box = { x0, x1: x0 + width, y0: c.labelY - LABEL_HEIGHT + 2, y1: c.labelY + 2 };
    const outside = box.y0 < plot.y || box.y1 > plot.y + plot.height ? 1000 : 0;
    const cost = outside + marks.filter((m) => overlaps(m, box)).length + (avoid && overlaps(avoid, box) ? 500 : 0);
    if (!best || cost < best.cost) best = { ...c, box, cost };
  }
  const chosen = best as { labelY: number; anchor: 'start' | 'end'; box: Box };
  return { labelY: chosen.labelY, anchor: chosen.anchor, box: chosen.box };
}

/** Places everything the chart draws. The caller turns the model into SVG. */
export function layoutChart(input: ChartInput, size: ChartSize): ChartModel {
  const { entries, direction, startingScore, referenceScore } = input;
  const width = Math.max(160, size.width);
  const height = Math.max(120, size.height);
  const inverted = direction === 'lower';

  // --- y domain: starting and reference always visible; far-off scores are pinned to the edge ---
  const coreLo = Math.min(startingScore, referenceScore);
  const coreHi = Math.max(startingScore, referenceScore);
  const coreSpan = coreHi - coreLo || Math.max(Math.abs(coreHi) * 0.1, 1);
  const allowedLo = coreLo - 2 * coreSpan;
  const allowedHi = coreHi + 2 * coreSpan;
  let dataLo = coreLo;
  let dataHi = coreHi;
  for (const e of entries) {
    if (e.score === null) continue;
    dataLo = Math.min(dataLo, Math.max(e.score, allowedLo));
    dataHi = Math.max(dataHi, Math.min(e.score, allowedHi));
  }
  const pad = (dataHi - dataLo || coreSpan) * 0.06;
  const rough = niceTicks(dataLo - pad, dataHi + pad, size.compact ? 5 : 8);
  // The range is rounded out to whole ticks, so that every score lies between two labelled ticks.
  const yStep = rough.step;
  const yDomain: [number, number] = [Math.floor(rough.min / yStep + 1e-9) * yStep, Math.ceil(rough.max / yStep - 1e-9) * yStep];
  const yTickValues: number[] = [];
  const decimals = stepDecimals(yStep);
  for (let i = Math.round(yDomain[0] / yStep); i * yStep <= yDomain[1] + yStep * 1e-9; i++) yTickValues.push(Number((i * yStep).toFixed(decimals)));
  const yTickInfo = { ticks: yTickValues, step: yStep };
  const yLabels = yTickInfo.ticks.map((t) => formatTick(t, yTickInfo.step));

  // --- margins ---
  const longest = Math.max(...yLabels.map((l) => l.length), 2);
  // At least room for the "no score" band label.
  const left = Math.ceil(Math.max(longest * FONT_CHAR_PX + 10, 56));
  const right = 10;
  const top = 30; // the axis title and the deadline label sit above the plot
  const bandHeight = 16;
  const xLabelSpace = 16;
  const xTitleSpace = size.compact ? 0 : 16;
  const bottom = 6 + bandHeight + xLabelSpace + xTitleSpace;
  const plot: Rect = { x: left, y: top, width: Math.max(40, width - left - right), height: Math.max(40, height - top - bottom) };
  const noScoreBand: Rect = { x: plot.x, y: plot.y + plot.height + 4, width: plot.width, height: bandHeight };

  // --- x domain: the latest run or now plus a margin, or the whole session once that is most of it;
  // stretched if a run started after the deadline ---
  const latestRun = entries.reduce((m, e) => Math.max(m, e.elapsed_s), 0);
  let xMax = timeWindowS(Math.max(latestRun, input.nowElapsedS ?? 0), input.timeLimitS);
  for (const e of entries) if (e.elapsed_s > input.timeLimitS) xMax = Math.max(xMax, e.elapsed_s * 1.02);
  const xDomain: [number, number] = [0, xMax];
  // Marks are placed MARK_RADIUS inside the plot's edges, so none is cut by an edge or drawn over an axis.
  const inner = { x: plot.x + MARK_RADIUS, width: plot.width - 2 * MARK_RADIUS, y: plot.y + MARK_RADIUS, height: plot.height - 2 * MARK_RADIUS };
  const toX = (s: number): number => inner.x + (Math.min(Math.max(s, 0), xMax) / xMax) * inner.width;
  const toY = (v: number): number => {
    const f = (Math.min(Math.max(v, yDomain[0]), yDomain[1]) - yDomain[0]) / (yDomain[1] - yDomain[0]);
    return inverted ? inner.y + f * inner.height : inner.y + inner.height - f * inner.height;
  };

  const maxXTicks = Math.max(2, Math.floor(plot.width / (size.compact ? 55 : 70)) + 1);
  const xTicks: ChartTick[] = timeTicks(xMax, maxXTicks)
    .filter((t) => t <= xMax + 1e-9)
    .map((t) => ({ value: t, at: toX(t), label: formatClock(t) }));
  const yTicks: ChartTick[] = yTickInfo.ticks.map((t, i) => ({ value: t, at: toY(t), label: yLabels[i] ?? '' }));

  // --- points ---
  const steps = bestSoFar(entries, direction);
  const improved = new Set(steps.map((s) => s.pos));
  const points: ChartPoint[] = [];
  const noScore: NoScorePoint[] = [];
  entries.forEach((e, pos) => {
    const x = toX(e.elapsed_s);
    if (e.score === null) {
      if (e.manual) return; // an answer a person scores later: neither a score nor a failure to draw
      noScore.push({ pos, index: e.index, x, y: noScoreBand.y + noScoreBand.height / 2, counts: e.counts });
      return;
    }
    points.push({
      pos,
      index: e.index,
      x,
      y: toY(e.score),
      score: e.score,
      counts: e.counts,
      counted: input.countedIndex !== null && e.index === input.countedIndex,
      best: improved.has(pos),
      clipped: e.score < yDomain[0] || e.score > yDomain[1],
    });
  });

  // --- best-so-far step line, carried to the last run or to now ---
  const bestLine: Array<[number, number]> = [];
  steps.forEach((s, i) => {
    const x = toX(s.elapsedS);
    const y = toY(s.score);
    if (i > 0) bestLine.push([x, bestLine[bestLine.length - 1]![1]]);
    bestLine.push([x, y]);
  });
  if (bestLine.length > 0) {
    const lastRun = entries.reduce((m, e) => Math.max(m, e.counts ? e.elapsed_s : 0), 0);
    const endS = Math.min(Math.max(lastRun, input.nowElapsedS ?? 0), input.timeLimitS);
    const endX = toX(endS);
    const last = bestLine[bestLine.length - 1]!;
    if (endX > last[0]) bestLine.push([endX, last[1]]);
  }

  // --- starting and reference lines. The starting label sits at the right end and the reference label
  // at the left, where the runs are least likely to be (early runs sit near the starting score, late
  // ones near the reference); a label goes under its line when the line hugs the top of the plot.
  const startY = toY(startingScore);
  const refY = toY(referenceScore);
  const markBoxes: Box[] = [
    ...points.map((p) => ({ x0: p.x - MARK_RADIUS, x1: p.x + MARK_RADIUS, y0: p.y - MARK_RADIUS, y1: p.y + MARK_RADIUS })),
    ...bestLine.slice(1).map(([x, y], i) => {
      const [px, py] = bestLine[i]!;
      return { x0: Math.min(px, x) - 1, x1: Math.max(px, x) + 1, y0: Math.min(py, y) - 1, y1: Math.max(py, y) + 1 };
    }),
  ];
  const startingLabel = `starting ${formatScore(startingScore)}`;
  const referenceLabel = `reference ${formatScore(referenceScore)}`;
  // The reference label first at the left (runs near the reference come late, at the right), then the
  // starting label at the right (early runs sit near the starting score at the left), never on each other.
  const refPlace = placeLabel(refY, referenceLabel, 'start', plot, markBoxes, undefined);
  const startPlace = placeLabel(startY, startingLabel, 'end', plot, markBoxes, refPlace.box);
  const deadlineInside = input.timeLimitS <= xMax + 1e-9;
  const deadlineX = deadlineInside ? toX(input.timeLimitS) : plot.x + plot.width + 1000;
  const labelAnchor = !deadlineInside || deadlineX > plot.x + plot.width - 30 ? 'end' : deadlineX < plot.x + 30 ? 'start' : 'middle';

  return {
    width,
    height,
    plot,
    noScoreBand,
    xDomain,
    yDomain,
    inverted,
    xTicks,
    yTicks,
    deadline: { x: deadlineX, labelAnchor, inside: deadlineInside, label: deadlineInside ? 'deadline' : `deadline ${formatClock(input.timeLimitS)} →` },
    starting: { y: startY, value: startingScore, label: startingLabel, labelY: startPlace.labelY, anchor: startPlace.anchor },
    reference: { y: refY, value: referenceScore, label: referenceLabel, labelY: refPlace.labelY, anchor: refPlace.anchor },
    points,
    noScore,
    bestLine,
    yAxisTitle: `score (${direction} is better) ↑ better`,
    xAxisTitle: size.compact ? null : 'session time (H:MM, pauses excluded)',
  };
}

/** One sentence for the chart's accessible name: "12 runs, best 4.21 at 2:13:05, 2 with no score". */
export function chartSummary(input: ChartInput): string {
  const n = input.entries.length;
  if (n === 0) return 'No runs yet';
  const parts = [`${n} ${n === 1 ? 'run' : 'runs'}`];
  const counted = input.countedIndex === null ? undefined : input.entries.find((e) => e.index === input.countedIndex);
  if (counted && counted.score !== null) {
    parts.push(`${input.aggregation === 'best' ? 'best' : 'last'} ${formatScore(counted.score)} at ${formatDuration(counted.elapsed_s)}`);
  }
  const none = input.entries.filter((e) => e.score === null && !e.manual).length;
  if (none > 0) parts.push(`${none} with no score`);
  return parts.join(', ');
}

/**
 * The marks worth drawing, in drawing order: of several that would look the same on the same whole pixel,
 * only the last (drawn on top, the one a pointer finds) can be seen. A long session puts thousands of runs
 * into a few hundred pixels, and drawing every hidden one made each new score slow to show. The table
 * below the chart still lists every run.
 */
export function visibleOnTop<T>(marks: readonly T[], cell: (mark: T) => string): T[] {
  const seen = new Set<string>();
  const kept: T[] = [];
  for (let i = marks.length - 1; i >= 0; i--) {
    const key = cell(marks[i]!);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(marks[i]!);
  }
  return kept.reverse();
}
