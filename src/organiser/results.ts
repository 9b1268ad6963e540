// The results table: one row per participant and environment (one per host), raw and normalised
// scores, when the best was reached, the session's times and the score log's integrity. Written as CSV
// (for spreadsheets) and JSON (for scripts), plus the whole collection for re-plotting later.
import * as z from '../core/zod';
import { formatZodError } from '../core/errors';
import { hiddenReplySchema, scoreLogEntrySchema, statusSchema, verifySchema, type ScoreLogEntry } from '../core/runnerProtocol';
import { countedEntry, normalise, organiserEntries } from '../core/scores';
import type { HostResult, Integrity } from './collect';
import { recordsReplySchema, type RecordsReply, type SessionRecord } from '../core/participantProtocol';

export interface ResultRow {
  participant: string;
  host: string;
  source: string;
  environment: string | null;
  environment_title: string | null;
  environment_version: string | null;
  direction: 'higher' | 'lower' | null;
  aggregation: 'best' | 'last' | null;
  starting_score: number | null;
  reference_score: number | null;
  /**
   * The score that counts under the environment's aggregation (best or last). Where scoring.visible hides a score,
   * every score of the row (counted, best, last, runs with a score) is the hidden one: it counts for the results.
   */
  counted_score: number | null;
  counted_normalised: number | null;
  /** scoring.visible: "all", "none" (the participant saw no values) or "validation" (a hidden test score). */
  score_visibility: 'all' | 'none' | 'validation' | null;
  /** The counted score as the participant saw it (null where every score was hidden from them). */
  visible_counted_score: number | null;
  visible_counted_normalised: number | null;
  best_score: number | null;
  best_normalised: number | null;
  /** Session time (pauses excluded) at which the best run started, and its clock time. */
  best_elapsed_s: number | null;
  best_at: string | null;
  last_score: number | null;
  last_normalised: number | null;
  last_elapsed_s: number | null;
  last_at: string | null;
  /** Every entry of the log; those with a score; those started after the deadline (they do not count). */
  scoring_runs: number;
  runs_with_score: number;
  runs_not_counting: number;
  session_state: string | null;
  mode: string | null;
  started_at: string | null;
  ended_at: string | null;
  deadline: string | null;
  time_limit_s: number | null;
  elapsed_s: number | null;
  /** Total time paused. */
  paused_s: number | null;
  /**
   * Time an administrator gave back on the record (extensions and infrastructure pauses), as the runner
   * reports it; null where the runner predates granting time or the host was not read.
   */
  time_granted_s: number | null;
  /**
   * The participant's scoring runs per hour of session time (pauses excluded): how often they scored.
   * RE-Bench compared this between humans and agents (about 3.4 an hour for its human experts).
   */
  runs_per_hour: number | null;
  /** Notes the participant wrote (the session record); null where the record was not read. */
  notes: number | null;
  /** When the participant confirmed the study's rules, if the environment has rules. */
  rules_confirmed_at: string | null;
  /** Why the participant gave up ("choice: reason"), or null when they did not. */
  gave_up: string | null;
  /** The answers to the end questions as JSON ({id: value}), "skipped", or null when not answered. */
  end_answers: string | null;
  /**
   * METR's own aggregate_scores over the counted runs, recorded on the VM once the session ended (METR
   * families that have it): beside counted_score, never instead of it; null when there is none or it gave none.
   */
  metr_aggregate: number | null;
  /** Submitted answers (end scoring) that wait for a person's score (counted_score is then null, never 0). */
  answers_scored_by_person: number;
  integrity: Integrity;
  integrity_detail: string | null;
  log_file: string | null;
  warnings: string;
  error: string | null;
}

export const RESULT_COLUMNS: ReadonlyArray<keyof ResultRow> = [
  'participant',
  'host',
  'environment',
  'environment_title',
  'environment_version',
  'direction',
  'aggregation',
  'starting_score',
  'reference_score',
  'counted_score',
  'counted_normalised',
  'score_visibility',
  'visible_counted_score',
  'visible_counted_normalised',
  'best_score',
  'best_normalised',
  'best_elapsed_s',
  'best_at',
  'last_score',
  'last_normalised',
  'last_elapsed_s',
  'last_at',
  'scoring_runs',
  'runs_with_score',
  'runs_not_counting',
  'session_state',
  'mode',
  'started_at',
  'ended_at',
  'deadline',
  'time_limit_s',
  'elapsed_s',
  'paused_s',
  'time_granted_s',
  'runs_per_hour',
  'notes',
  'rules_confirmed_at',
  'gave_up',
  'end_answers',
  'metr_aggregate',
  'answers_scored_by_person',
  'integrity',
  'integrity_detail',
  'log_file',
  'warnings',
  'error',
  'source',
];

/** 12 significant digits: drops floating-point noise (0.8800000000000001) that no score carries. */
function tidy(n: number): number {
  return Number(n.toPrecision(12));
}

/** Less session time than this gives no rate: a run in the first minutes would read as dozens an hour. */
export const MIN_HOURS_FOR_RATE = 0.25;

/**
 * Scoring runs the participant asked for (not the final run made when a session ends) per hour of session
 * time, pauses excluded; runs started after the deadline are left out, as their time is not session time.
 */
export function runsPerHour(entries: readonly ScoreLogEntry[], elapsedS: number | null): number | null {
  if (elapsedS === null) return null;
  const hours = elapsedS / 3600;
  if (hours < MIN_HOURS_FOR_RATE) return null;
  const runs = entries.filter((e) => e.kind === 'score' && e.counts).length;
  return Number((runs / hours).toFixed(3));
}

/** One host's row; `logFile` is where its score log was archived, if it was. */
export function resultRow(r: HostResult, logFile: string | null = null): ResultRow {
  const s = r.status;
  const env = s?.environment;
  const norm = (e: ScoreLogEntry | undefined) => (e && env && e.score !== null ? tidy(normalise(e.score, env.starting_score, env.reference_score)) : null);
  // What counts for the results: the hidden scores where there are any.
  const entries = organiserEntries(r.entries, r.hidden);
  const best = env ? countedEntry(entries, env.direction, 'best') : undefined;
  const last = env ? countedEntry(entries, env.direction, 'last') : undefined;
  const counted = env?.aggregation === 'last' ? last : best;
  const visible = env ? countedEntry(r.entries, env.direction, env.aggregation) : undefined;
  return {
    participant: r.spec.participant,
    host: r.label,
    source: r.spec.source,
    environment: env?.id ?? r.spec.environment ?? null,
    environment_title: env?.title ?? null,
    environment_version: env?.version ?? null,
    direction: env?.direction ?? null,
    aggregation: env?.aggregation ?? null,
    starting_score: env?.starting_score ?? null,
    reference_score: env?.reference_score ?? null,
    counted_score: counted?.score ?? null,
    counted_normalised: norm(counted),
    score_visibility: env ? (env.visible ?? 'all') : null,
    visible_counted_score: visible?.score ?? null,
    visible_counted_normalised: norm(visible),
    best_score: best?.score ?? null,
    best_normalised: norm(best),
    best_elapsed_s: best?.elapsed_s ?? null,
    best_at: best?.started_at ?? null,
    last_score: last?.score ?? null,
    last_normalised: norm(last),
    last_elapsed_s: last?.elapsed_s ?? null,
    last_at: last?.started_at ?? null,
    scoring_runs: r.entries.length,
    runs_with_score: entries.filter((e) => e.score !== null).length,
    runs_not_counting: r.entries.filter((e) => !e.counts).length,
    session_state: s?.state ?? null,
    mode: s?.mode ?? null,
    started_at: s?.started_at ?? null,
    ended_at: s?.ended_at ?? null,
    deadline: s?.deadline ?? null,
    time_limit_s: env?.time_limit_s ?? null,
    elapsed_s: s?.elapsed_s ?? null,
    paused_s: s?.paused_s ?? null,
    time_granted_s: s?.granted_s ?? null,
    runs_per_hour: s && s.state !== 'not_started' ? runsPerHour(r.entries, s.elapsed_s) : null,
    ...recordColumns(r.records),
    metr_aggregate: s?.aggregate?.score ?? null,
    answers_scored_by_person: r.entries.filter((e) => e.kind === 'submit' && e.manual === true).length,
    integrity: r.integrity,
    integrity_detail: r.integrityDetail,
    log_file: logFile,
    warnings: r.warnings.join(' '),
    error: r.error ?? null,
  };
}

/**
 * Rows grouped by environment, best counted score first within each (by normalised score, which is
 * direction-free); hosts that could not be read come last, in the order given.
 */
export function sortRows(rows: readonly ResultRow[]): ResultRow[] {
  return rows
    .map((row, i) => ({ row, i }))
    .sort((a, b) => {
      const ea = a.row.environment_title === null ? 1 : 0;
      const eb = b.row.environment_title === null ? 1 : 0;
      if (ea !== eb) return ea - eb;
      if (ea === 1) return a.i - b.i;
      const env = (a.row.environment ?? '').localeCompare(b.row.environment ?? '');
      if (env !== 0) return env;
      const na = a.row.counted_normalised ?? -Infinity;
      const nb = b.row.counted_normalised ?? -Infinity;
      if (na !== nb) return nb - na;
      return a.row.participant.localeCompare(b.row.participant) || a.i - b.i;
    })
    .map((x) => x.row);
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote, line break or outer space. Text that a
 * spreadsheet would run as a formula (=, +, -, @ first) gets a leading apostrophe; numbers stay numbers.
 */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  let text = value;
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(rows: readonly ResultRow[]): string {
  const lines = [RESULT_COLUMNS.join(',')];
  for (const row of rows) lines.push(RESULT_COLUMNS.map((c) => csvField(row[c])).join(','));
  // CRLF as RFC 4180 asks; spreadsheets and csv readers take it everywhere.
  return `${lines.join('\r\n')}\r\n`;
}

export interface EnvironmentSummary {
  environment: string;
  title: string;
  aggregation: 'best' | 'last';
  participants: number;
  /** Participants whose counted score exists, and the mean and best of their normalised scores. */
  scored: number;
  mean_counted_normalised: number | null;
  best_counted_normalised: number | null;
  logs_not_intact: number;
  /** The mean of the participants' runs per hour, over those with a rate. */
  mean_runs_per_hour: number | null;
  /** Participants who were given time back, and how much in all (seconds). */
  participants_granted_time: number;
  time_granted_s: number;
}

export function summarise(rows: readonly ResultRow[]): EnvironmentSummary[] {
  const by = new Map<string, ResultRow[]>();
  for (const row of rows) {
    if (row.environment === null || row.environment_title === null) continue;
    by.set(row.environment, [...(by.get(row.environment) ?? []), row]);
  }
  return [...by.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([environment, list]) => {
      const scores = list.map((r) => r.counted_normalised).filter((v): v is number => v !== null);
      const rates = list.map((r) => r.runs_per_hour).filter((v): v is number => v !== null);
      const granted = list.map((r) => r.time_granted_s ?? 0).filter((v) => v > 0);
      return {
        environment,
        title: list[0]!.environment_title ?? environment,
        aggregation: list[0]!.aggregation ?? 'best',
        participants: list.length,
        scored: scores.length,
        mean_counted_normalised: scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : null,
        best_counted_normalised: scores.length ? Math.max(...scores) : null,
        logs_not_intact: list.filter((r) => r.integrity !== 'intact').length,
        mean_runs_per_hour: rates.length ? Number((rates.reduce((a, b) => a + b, 0) / rates.length).toFixed(3)) : null,
        participants_granted_time: granted.length,
        time_granted_s: granted.reduce((a, b) => a + b, 0),
      };
    });
}

export function toResultsJson(rows: readonly ResultRow[], generatedAt: string): string {
  return `${JSON.stringify({ generated_at: generatedAt, environments: summarise(rows), rows }, null, 2)}\n`;
}

// --- the whole collection, saved so that the table and the plot can be made again without the VMs ---

const hostRecordSchema = z.object({
  participant: z.string(),
  host: z.string(),
  source: z.string(),
  /** The environment the profile or hosts line expected, if it named one. */
  expected_environment: z.string().nullable(),
  ok: z.boolean(),
  error: z.string().nullable(),
  status: statusSchema.nullable(),
  entries: z.array(scoreLogEntrySchema),
  /** The hidden scores, where the log has any and they were read (absent from older collections). */
  hidden: hiddenReplySchema.nullable().optional(),
  verify: verifySchema.nullable(),
  integrity: z.enum(['intact', 'broken', 'unknown']),
  integrity_detail: z.string().nullable(),
  warnings: z.array(z.string()),
  log_file: z.string().nullable(),
  collected_at: z.string(),
  log: z.array(z.string()),
  /** The session record as the runner read it; absent in collections written before it was kept here. */
  records: recordsReplySchema.nullable().optional(),
});
export type HostRecord = z.infer<typeof hostRecordSchema>;

export const collectionSchema = z.object({
  format: z.literal('rebench-collection-1'),
  generated_at: z.string(),
  hosts: z.array(hostRecordSchema),
});
export type Collection = z.infer<typeof collectionSchema>;

export function hostRecord(r: HostResult, logFile: string | null): HostRecord {
  return {
    participant: r.spec.participant,
    host: r.label,
    source: r.spec.source,
    expected_environment: r.spec.environment ?? null,
    ok: r.ok,
    error: r.error ?? null,
    status: r.status ?? null,
    entries: r.entries,
    hidden: r.hidden ?? null,
    verify: r.verify ?? null,
    integrity: r.integrity,
    integrity_detail: r.integrityDetail,
    warnings: r.warnings,
    log_file: logFile,
    collected_at: r.collectedAt,
    log: r.log,
    records: r.records ?? null,
  };
}

/** A saved host back in the shape the table and the plot read. */
export function hostFromRecord(rec: HostRecord, index: number): HostResult {
  return {
    index,
    spec: {
      participant: rec.participant,
      host: rec.host,
      port: 0,
      user: '',
      protectedMode: false,
      environment: rec.expected_environment ?? undefined,
      source: rec.source,
    },
    label: rec.host,
    ok: rec.ok,
    error: rec.error ?? undefined,
    status: rec.status ?? undefined,
    entries: rec.entries,
    hidden: rec.hidden ?? undefined,
    verify: rec.verify ?? undefined,
    integrity: rec.integrity,
    integrityDetail: rec.integrity_detail,
    warnings: rec.warnings,
    log: rec.log,
    collectedAt: rec.collected_at,
    durationMs: 0,
    records: rec.records ?? undefined,
  };
}

export function parseCollection(text: string, source: string): { ok: true; value: Collection } | { ok: false; error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `${source} is not JSON (${(e as Error).message}). Give the collection.json that "collect" wrote.` };
  }
  const parsed = collectionSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, error: `${source} is not a collection written by "collect": ${formatZodError(parsed.error)}` };
  return { ok: true, value: parsed.data };
}

/** The session record's part of a row: notes, the rules confirmed, giving up and the end answers (the last of each). */
export function recordColumns(records: RecordsReply | undefined): Pick<ResultRow, 'notes' | 'rules_confirmed_at' | 'gave_up' | 'end_answers'> {
  if (!records) return { notes: null, rules_confirmed_at: null, gave_up: null, end_answers: null };
  const list = records.records;
  const last = <K extends SessionRecord['kind']>(kind: K) => list.filter((r): r is Extract<SessionRecord, { kind: K }> => r.kind === kind).pop();
  const rules = last('rules_confirmed');
  const giveUp = last('give_up');
  const answers = last('answers');
  return {
    notes: list.filter((r) => r.kind === 'note').length,
    rules_confirmed_at: rules?.time ?? null,
    gave_up: giveUp ? [giveUp.choice, giveUp.reason].filter((t) => t).join(': ') || '(no reason given)' : null,
    end_answers: answers ? (answers.skipped ? 'skipped' : JSON.stringify(Object.fromEntries(answers.answers.map((a) => [a.id, a.value])))) : null,
  };
}
