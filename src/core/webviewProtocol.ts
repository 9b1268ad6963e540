// The one message catalogue between the extension host and the session view. Both sides validate
// what they receive with these schemas: the webview is a boundary like any other.
import * as z from './zod';
import { scoreVisibilitySchema } from './manifest';
import { scoreLogEntrySchema } from './runnerProtocol';

export const connectionViewSchema = z.object({
  kind: z.enum(['disconnected', 'connecting', 'connected', 'reconnecting', 'failed']),
  /** "this machine" or "user@host:port". */
  target: z.string().nullable(),
  /** A sentence for the participant, e.g. "Reconnecting in 4 s (attempt 3)…". */
  detail: z.string(),
});

export const sessionViewSchema = z.object({
  state: z.enum(['not_started', 'running', 'paused', 'ended']),
  /** The deadline expressed on this machine's clock (VM deadline minus the measured offset), epoch ms. */
  deadlineLocalMs: z.number().nullable(),
  /** Seconds left when the snapshot was taken; the countdown uses it while paused or ended. */
  secondsLeft: z.number().nullable(),
  deadlineIso: z.string().nullable(),
  startedIso: z.string().nullable(),
  /** Working time in seconds: the environment's limit plus the organiser's extensions. */
  timeLimitS: z.number(),
  clockOffsetMs: z.number(),
  mode: z.enum(['protected', 'unprotected']),
  solutionDir: z.string(),
  /**
   * Time the organiser gave back on the record (extensions and infrastructure pauses), and the latest
   * grant with its reason, for the notice beside the countdown; null when none was given.
   */
  timeGiven: z
    .object({
      totalS: z.number().min(0),
      grants: z.number().int().min(1),
      latest: z.object({
        kind: z.enum(['extend', 'infrastructure_pause']),
        seconds: z.number().min(0),
        reason: z.string(),
        /** Who granted it: the administrator's login, as the runner recorded it. */
        by: z.string(),
        at: z.string(),
      }),
    })
    .nullable()
    .optional(),
});

export const environmentViewSchema = z.object({
  id: z.string(),
  title: z.string(),
  version: z.string(),
  direction: z.enum(['higher', 'lower']),
  aggregation: z.enum(['best', 'last']),
  startingScore: z.number(),
  referenceScore: z.number(),
  pausesAllowed: z.boolean(),
  /** End scoring: the answer's form and pattern; Submit Answer… replaces Score now. Null otherwise. */
  submit: z.object({ format: z.string(), pattern: z.string().nullable() }).nullable().optional(),
  /** scoring.visible: "none" hides every score's value from the participant, "validation" keeps a second one hidden. */
  visible: scoreVisibilitySchema,
});

export const countdownViewSchema = z.object({
  /** Seconds left at which the time left takes the warning colour. */
  warningS: z.number().min(0),
  /** Seconds left at which it takes the error colour. */
  criticalS: z.number().min(0),
});

export const jobViewSchema = z.object({
  jobId: z.string(),
  startedIso: z.string(),
  /** Output so far, already capped by the host. */
  output: z.string(),
});

export const snapshotSchema = z.object({
  connection: connectionViewSchema,
  environment: environmentViewSchema.nullable(),
  session: sessionViewSchema.nullable(),
  job: jobViewSchema.nullable(),
  entries: z.array(scoreLogEntrySchema),
  /** Index of the entry that counts (best or last), or null. */
  countedIndex: z.number().int().nullable(),
  logIntact: z.boolean(),
  logProblem: z.string().nullable(),
  /** Why Score now is disabled, in words; null when it is enabled. */
  scoreDisabledReason: z.string().nullable(),
  /** Said before Score now is clicked when a typical run would end after the deadline (with the rule). */
  deadlineWarning: z.string().nullable().optional(),
  /** The countdown's thresholds from the settings: every view colours the time left by these. */
  countdown: countdownViewSchema,
});
export type Snapshot = z.infer<typeof snapshotSchema>;
export type ConnectionView = z.infer<typeof connectionViewSchema>;
export type SessionView = z.infer<typeof sessionViewSchema>;
export type EnvironmentView = z.infer<typeof environmentViewSchema>;
export type CountdownView = z.infer<typeof countdownViewSchema>;

export const viewActions = [
  'connect',
  'start',
  'score',
  'submitAnswer',
  'showInstructions',
  'showHistory',
  'pause',
  'resume',
  'end',
  'exportLog',
  'openSolution',
  'showLog',
  'disconnect',
  'addNote',
  'giveUp',
  'showChanges',
  'restoreSolution',
] as const;
export type ViewAction = (typeof viewActions)[number];

/** Host → webview. */
export const hostMessageSchema = z.discriminatedUnion('type', [
  /**
   * With entriesFrom, `snapshot.entries` holds only the entries from that position on: the view already
   * has the ones before it (the host sends a long score log once per document, then what is new).
   */
  z.object({ type: z.literal('snapshot'), snapshot: snapshotSchema, entriesFrom: z.number().int().min(0).optional() }),
  z.object({ type: z.literal('jobOutput'), jobId: z.string(), text: z.string() }),
  z.object({ type: z.literal('reply'), id: z.number().int(), ok: z.boolean(), error: z.string().optional() }),
]);
export type HostMessage = z.infer<typeof hostMessageSchema>;

/** Webview → host. */
export const viewMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  /** index: the score log entry an action is about (show changes, restore), when it is about one. */
  z.object({ type: z.literal('request'), id: z.number().int().min(0), action: z.enum(viewActions), index: z.number().int().min(0).optional() }),
]);
export type ViewMessage = z.infer<typeof viewMessageSchema>;

/**
 * What a failed request's error is about: the connection and the session as they were when it failed. The
 * view shows the error next to its button until this changes (a later connection, a start, a new score):
 * then the state the error describes is gone, and so is the error.
 */
export function errorContextKey(snapshot: Snapshot): string {
  const { connection, session, environment, entries } = snapshot;
  return JSON.stringify([connection.kind, connection.target, environment?.id ?? null, session?.state ?? null, entries.length]);
}

/** The most job output the host keeps for the view; older text is dropped from the front. */
export const JOB_OUTPUT_VIEW_LIMIT = 64 * 1024;
