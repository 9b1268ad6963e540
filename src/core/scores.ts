// Direction-aware scores: some environments are "lower is better" (log of a time or a loss), and a
// failed run is "no score" (null), never 0.
import type { ScoreLogEntry } from './runnerProtocol';

export type Direction = 'higher' | 'lower';
export type Aggregation = 'best' | 'last';

/** yn = (y - ys) / (yr - ys): 0 at the starting solution, 1 at the reference, whatever the direction. */
export function normalise(score: number, startingScore: number, referenceScore: number): number {
  // "+ 0" turns -0 (a lower-is-better start) into 0.
  return (score - startingScore) / (referenceScore - startingScore) + 0;
}

export function isBetter(a: number, b: number, direction: Direction): boolean {
  return direction === 'lower' ? a < b : a > b;
}

type Scored = ScoreLogEntry & { score: number };

export function hasScore(e: ScoreLogEntry): e is Scored {
  return e.score !== null && Number.isFinite(e.score);
}

/** The entry that counts: best by direction, or the last one, among entries that count and have a score. */
export function countedEntry(entries: readonly ScoreLogEntry[], direction: Direction, aggregation: Aggregation): Scored | undefined {
  let chosen: Scored | undefined;
  for (const e of entries) {
    if (!e.counts || !hasScore(e)) continue;
    if (!chosen || aggregation === 'last' || isBetter(e.score, chosen.score, direction)) chosen = e;
  }
  return chosen;
}

export function lastScored(entries: readonly ScoreLogEntry[]): Scored | undefined {
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (hasScore(e)) return e;
  }
  return undefined;
}

/** Shortest readable form: up to 4 decimals, no trailing zeros. */
export function formatScore(score: number | null): string {
  if (score === null || !Number.isFinite(score)) return 'no score';
  const abs = Math.abs(score);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-4)) return score.toExponential(3);
  return String(Number(score.toFixed(4)));
}
