// The runner's JSON output (environments/runner ... --json, and its serve channel), validated on arrival.
// environments/README.md documents the same shapes for organisers; keep the two in step.
import * as z from './zod';
import { formatZodError } from './errors';
import { scoreVisibilitySchema } from './manifest';
import { entrySnapshotSchema, participantStatusSchema } from './participantProtocol';

export const RUNNER_VERSION = '1.1.0';

/** Exit codes of the runner; the names appear in `error.code` of a JSON error. */
export const RUNNER_EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  busy: 3, // another scoring job is running; error.job names it
  refused: 4, // not allowed in this session state (not started, ended, deadline passed, pauses off)
  environment: 5, // environment missing or broken
  integrity: 6, // the score log failed verification
} as const;

const isoTime = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/, 'an ISO 8601 time with zone');

const sha256Hex = z
  .string()
  .regex(/^[0-9a-f]{64}$/)
  .meta({ expected: '64 lowercase hex digits' });

/**
 * The public trace of a hidden value in a score log entry: the SHA-256 of the hidden record (its job, a random
 * salt, the hidden score and message; see hiddenRecordSchema), so the chain covers it without holding it, and,
 * where the score itself is hidden (visible "none"), whether the run produced one.
 */
export const entryHiddenSchema = z
  .object({
    sha256: sha256Hex.meta({ description: 'sha256 of the hidden record (canonical JSON).' }),
    scored: z.boolean().optional().meta({ description: 'visible "none" only: whether the run produced a score.' }),
  })
  .strict();
export type EntryHidden = z.infer<typeof entryHiddenSchema>;

// One line of the score log. The runner checks every line against the JSON Schema generated from this
// (environments/runner/contract.json); environments/README.md's table of its fields is generated from it too.
export const scoreLogEntrySchema = z
  .object({
    index: z.number().int().min(0).meta({ description: "The entry's line number in the file, counting from 0." }),
    job_id: z.string().min(1).meta({ description: 'j<UTC yyyymmddThhmmssmmm>Z-<6 hex>' }),
    /** "score" for a participant's request, "final" for the run made by `end` when the last score counts. */
    kind: z.enum(['score', 'final', 'submit']).meta({
      description:
        "score (a participant's request), final (the run made by end when the last score counts) or submit (the submitted answer, scored once at the end).",
    }),
    started_at: isoTime.meta({ expected: 'an ISO 8601 time with zone', description: "The job's start (the moment of the request), UTC ISO 8601." }),
    ended_at: isoTime.meta({ expected: 'an ISO 8601 time with zone', description: "The job's end, UTC ISO 8601." }),
    /** Session seconds elapsed when the job started, pauses excluded. */
    elapsed_s: z.number().min(0).meta({ description: "Session seconds elapsed at the job's start, pauses excluded." }),
    /** null means "no score" (failed, timed out, invalid): never drawn or counted as 0. */
    score: z.number().finite().nullable().meta({ description: 'A finite number, or null for no score (never counted as 0).' }),
    message: z.string().meta({ description: 'For the participant.' }),
    exit_code: z.number().int().nullable().meta({ description: "The scorer's exit status, or null if it was killed by a signal or did not start." }),
    signal: z.string().nullable().meta({ description: 'e.g. SIGTERM or SIGKILL, or null.' }),
    timed_out: z.boolean().meta({ description: 'Whether the scorer hit timeout_s.' }),
    killed: z.boolean().meta({ description: 'Whether the scorer was killed (by timeout, signal or loss of its job process).' }),
    duration_s: z.number().min(0).meta({ description: 'From the request to the end of the job.' }),
    /** "sha256:<hex>" of the solution folder's contents when the job started. */
    solution_hash: z.string().min(1).meta({ description: 'sha256:<hex> of the solution folder when the job ran.' }),
    /** Whether the entry counts: the job started before the deadline (the documented rule). */
    counts: z.boolean().meta({ description: 'Whether the job started before the deadline.' }),
    output_bytes: z.number().int().min(0).meta({ description: 'Everything the scorer printed, in bytes.' }),
    output_truncated: z.boolean().meta({ description: 'Whether some of the output was not kept.' }),
    prev_hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .meta({ expected: '64 lowercase hex digits', description: 'The hash of the entry before (for the first, of the session start).' }),
    hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .meta({ expected: '64 lowercase hex digits', description: 'sha256 of the entry without this field, as canonical JSON.' }),
    /** What of the solution folder was kept when the job started (absent in logs from before snapshots). */
    snapshot: entrySnapshotSchema.optional().meta({ description: 'What of the solution folder was kept when the job started (absent before snapshots).' }),
    /** A submitted answer that a person scores later: no score yet, which is neither 0 nor a failure. */
    manual: z.literal(true).optional().meta({ description: 'true when a person scores the submitted answer later (score is null until then).' }),
    hidden: entryHiddenSchema.optional().meta({
      description: 'Where scoring.visible hides a value: the hash of the hidden record kept for the organiser, and (visible "none") whether the run scored.',
    }),
  })
  .strict();
export type ScoreLogEntry = z.infer<typeof scoreLogEntrySchema>;

export const environmentSummarySchema = z.object({
  id: z.string(),
  title: z.string(),
  version: z.string(),
  direction: z.enum(['higher', 'lower']),
  aggregation: z.enum(['best', 'last']),
  starting_score: z.number(),
  reference_score: z.number(),
  time_limit_s: z.number(),
  pauses_allowed: z.boolean(),
  instructions_before_start: z.boolean(),
  gpus: z.number().int().min(0),
  gpu_model: z.string().nullable(),
  min_free_disk_gb: z.number(),
  scoring_timeout_s: z.number(),
  /** The manifest's starting score, when starting_score was measured on this machine (measure-start). */
  manifest_starting_score: z.number().optional(),
  starting_score_measured_at: isoTime.nullable().optional(),
  /** How the starting and reference scores were estimated, when the manifest says they are not calibrated yet. */
  calibration_pending: z.string().nullable().optional(),
  /** End scoring: the answer's form and pattern (Submit Answer instead of Score now); null or absent otherwise. */
  submit: z.object({ format: z.string(), pattern: z.string().nullable() }).nullable().optional(),
  /** scoring.visible (absent from older runners: "all"). */
  visible: scoreVisibilitySchema.optional(),
});
export type EnvironmentSummary = z.infer<typeof environmentSummarySchema>;

export const jobSummarySchema = z.object({
  job_id: z.string(),
  kind: z.enum(['score', 'final', 'submit']),
  started_at: isoTime,
  pid: z.number().int().nullable(),
});
export type JobSummary = z.infer<typeof jobSummarySchema>;

/**
 * Time given back to a participant by an administrator, on the record: an extension of the deadline, or a
 * stretch of clock time that counts as paused because the infrastructure failed (it moves the deadline by
 * the part of it not already paused).
 */
export const grantSchema = z.object({
  kind: z.enum(['extend', 'infrastructure_pause']),
  /** Seconds by which this grant moved the deadline. */
  seconds: z.number().min(0),
  /** The paused stretch, for an infrastructure pause; null for an extension. */
  from: isoTime.nullable(),
  to: isoTime.nullable(),
  reason: z.string(),
  /** Who granted it, as the runner saw them (the administrator's login). */
  by: z.string(),
  at: isoTime,
});
export type Grant = z.infer<typeof grantSchema>;

/**
 * What the environment's aggregate_command gave over the whole score log once the session ended (a METR
 * family's own aggregate_scores): recorded for the organiser beside the counted score, never instead of it.
 */
export const aggregateRecordSchema = z.object({
  /** A finite number, or null when the aggregate gave none (NaN, null, a failure): never 0. */
  score: z.number().finite().nullable(),
  message: z.string(),
  computed_at: isoTime,
  /** The counted entries it was computed over. */
  entries: z.number().int().min(0),
});
export type AggregateRecord = z.infer<typeof aggregateRecordSchema>;

/** `aggregate --json`. */
export const aggregateReplySchema = z.object({ aggregate: aggregateRecordSchema });

export const sessionStateSchema = z.enum(['not_started', 'running', 'paused', 'ended']);
export type SessionState = z.infer<typeof sessionStateSchema>;

export const statusSchema = z.object({
  runner_version: z.string(),
  mode: z.enum(['protected', 'unprotected']),
  environment: environmentSummarySchema,
  state: sessionStateSchema,
  started_at: isoTime.nullable(),
  deadline: isoTime.nullable(),
  ended_at: isoTime.nullable(),
  /** The VM's clock when the status was taken, for the client's clock offset. */
  now: isoTime,
  seconds_left: z.number().nullable(),
  elapsed_s: z.number().min(0),
  paused_s: z.number().min(0),
  job: jobSummarySchema.nullable(),
  entries: z.number().int().min(0),
  /** The entry that counts: best by direction, or last, per the environment's aggregation. */
  counted: z.object({ index: z.number().int(), score: z.number(), normalized: z.number() }).nullable(),
  log_intact: z.boolean(),
  solution_dir: z.string(),
  /** The organiser's rules, questions and reasons, and the session record's state (absent from older runners). */
  participant: participantStatusSchema.optional(),
  /** Seconds given back in all (see grantSchema), and each grant; absent from runners that cannot grant time. */
  granted_s: z.number().min(0).optional(),
  grants: z.array(grantSchema).optional(),
  /** The aggregate of the whole log recorded once the session ended (aggregate_command), for the organiser. */
  aggregate: aggregateRecordSchema.nullable().optional(),
});
export type RunnerStatus = z.infer<typeof statusSchema>;

/** Lines of `score --follow` and `attach`: output chunks, then the entry (or an error). */
export const streamEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('job'), job_id: z.string(), started_at: isoTime, output_offset: z.number().int().min(0) }),
  z.object({ type: z.literal('output'), text: z.string(), offset: z.number().int().min(0) }),
  z.object({ type: z.literal('entry'), entry: scoreLogEntrySchema }),
  z.object({ type: z.literal('error'), error: z.lazy(() => runnerErrorSchema) }),
]);
export type StreamEvent = z.infer<typeof streamEventSchema>;

export const runnerErrorSchema = z.object({
  code: z.enum(['internal', 'usage', 'busy', 'refused', 'environment', 'integrity']),
  message: z.string(),
  job: jobSummarySchema.optional(),
});
export type RunnerError = z.infer<typeof runnerErrorSchema>;

export const errorReplySchema = z.object({ error: runnerErrorSchema });

export const verifySchema = z.object({
  intact: z.boolean(),
  entries: z.number().int().min(0),
  /** Index (line number from 0) of the first bad entry, and why. */
  first_bad: z.number().int().nullable(),
  reason: z.string().nullable(),
});
export type VerifyResult = z.infer<typeof verifySchema>;

export const logReplySchema = z.object({ entries: z.array(scoreLogEntrySchema) });

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Parses one JSON document from the runner against a schema; a runner error reply is reported as such. */
export function parseRunnerJson<T>(schema: z.ZodType<T>, text: string, what: string): Parsed<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    return { ok: false, error: `The runner's ${what} reply is not JSON: ${JSON.stringify(shown)}` };
  }
  const asError = errorReplySchema.safeParse(raw);
  if (asError.success) {
    // The runner always explains itself; an empty message would leave the participant with nothing.
    const { code, message } = asError.data.error;
    return { ok: false, error: message.trim() ? message : `The runner's ${what} command failed (${code}) without saying why; Show Log has the details.` };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, error: `The runner's ${what} reply has an unexpected shape: ${formatZodError(parsed.error)}` };
  }
  return { ok: true, value: parsed.data };
}

/**
 * One line of `runner serve`: a reply ({id, exit_code, result} or {id, exit_code, error}), an event of a
 * request's stream ({id, event}), or an event of the session ({event}, no id).
 */
export const channelLineSchema = z.object({
  id: z.number().int().min(0).nullable().optional(),
  event: z.unknown().optional(),
  exit_code: z.number().int().optional(),
  result: z.unknown().optional(),
  error: runnerErrorSchema.optional(),
});
export interface ChannelReply {
  id: number;
  exit_code: number;
  result?: unknown;
  error?: RunnerError;
}

/** Events of the session on the channel: the first line (hello), a new score log entry, a session change. */
export const channelEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), runner_version: z.string() }),
  z.object({ type: z.literal('entry'), entry: scoreLogEntrySchema }),
  z.object({ type: z.literal('session'), status: statusSchema }),
  z.object({ type: z.literal('error'), error: runnerErrorSchema }),
]);
export type ChannelEvent = z.infer<typeof channelEventSchema>;

/**
 * One hidden record as the runner's `hidden` command gives it to the organiser (never to the participant's
 * sudo rule): the hidden score and message of one entry, and whether the record matches the hash in its entry.
 */
export const hiddenScoreSchema = z.object({
  index: z.number().int().min(0),
  job_id: z.string(),
  /** The hidden score (visible "none": the score; "validation": the hidden_score); null for no score. */
  score: z.number().finite().nullable(),
  message: z.string(),
  /** false when the record is missing or does not match the hash its entry holds (then score is null). */
  intact: z.boolean(),
  problem: z.string().nullable(),
});
export type HiddenScore = z.infer<typeof hiddenScoreSchema>;

export const hiddenReplySchema = z.object({
  visible: scoreVisibilitySchema,
  hidden: z.array(hiddenScoreSchema),
  /** Unprotected mode: a note that the participant could read the same records. */
  note: z.string().nullable(),
});
export type HiddenReply = z.infer<typeof hiddenReplySchema>;
