// Direction-aware scores: some environments are "lower is better" (log of a time or a loss), and a
// failed run is "no score" (null), never 0.
import type { HiddenReply, ScoreLogEntry } from './runnerProtocol';

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

/** Whether the run scored but its value is hidden from the participant (scoring.visible "none"). */
export function scoredButHidden(e: Pick<ScoreLogEntry, 'hidden'>): boolean {
  return e.hidden?.scored === true;
}

/**
 * Whether the run gave no score at all (a run whose score is only hidden is not one of them, nor a submitted
 * answer that a person scores later).
 */
export function isNoScore(e: Pick<ScoreLogEntry, 'score' | 'hidden' | 'manual'>): boolean {
  return e.score === null && !scoredButHidden(e) && e.manual !== true;
}

/**
 * A run's score as the participant reads it: the value, "no score", "hidden" where it scored unseen, or "by a
 * person" for a submitted answer scored later.
 */
export function entryScoreText(e: Pick<ScoreLogEntry, 'score' | 'hidden' | 'manual'>): string {
  if (scoredButHidden(e)) return 'hidden';
  return e.score === null && e.manual === true ? 'by a person' : formatScore(e.score);
}

/**
 * The score log as the organiser counts it: where scoring.visible hides a value, each entry's score is its hidden
 * score (the environment's direction and aggregation then apply to those, as to any log). An entry whose hidden
 * record was not read, is missing or does not match the hash in the log has no score: never a guess.
 */
export function organiserEntries(entries: readonly ScoreLogEntry[], hidden: HiddenReply | undefined): ScoreLogEntry[] {
  if (!entries.some((e) => e.hidden)) return entries as ScoreLogEntry[];
  const byJob = new Map((hidden?.hidden ?? []).map((h) => [h.job_id, h]));
  return entries.map((e) => {
    if (!e.hidden) return e;
    const record = byJob.get(e.job_id);
    return { ...e, score: record?.intact ? record.score : null };
  });
}

/** What the participant is told about hidden scores, or null where nothing is hidden. */
export function visibilityNote(visible: 'all' | 'none' | 'validation' | undefined): string | null {
  if (visible === 'none')
    return 'Your scores are hidden in this study: you see that each run happened and whether it scored, never the value. The organiser sees them.';
  if (visible === 'validation')
    return 'The score you see is a validation score. Each run also gets a hidden test score (the same measurement on inputs you do not see) that only the organiser sees; the hidden one counts for the study.';
  return null;
}

/** Shortest readable form: up to 4 decimals, no trailing zeros. */
export function formatScore(score: number | null): string {
  if (score === null || !Number.isFinite(score)) return 'no score';
  const abs = Math.abs(score);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-4)) return score.toExponential(3);
  return String(Number(score.toFixed(4)));
}

/**
 * A normalised score (0 at the starting solution, 1 at the reference) to 3 decimals, no trailing zeros:
 * a fraction of the way, where 0.00004 of it is 0 ("-0" too), never a power of ten.
 */
export function formatNormalised(normalised: number): string {
  if (!Number.isFinite(normalised)) return '—';
  return String(Number(normalised.toFixed(3)));
}
