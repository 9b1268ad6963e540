// The runner's replies about what the participant keeps, says and agrees to (environments/runner/records.py
// and snapshots.py on the VM): kept solutions, their changes and restores, and the session record.
// Validated on arrival like every runner reply; environments/README.md documents the same shapes.
import * as z from './zod';
import { endQuestionSchema } from './participant';

const hash = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 hash in hexadecimal');
const isoTime = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'a UTC ISO 8601 time');
const whole = z.number().int().min(0);

/** Why a path was left out of a kept solution (snapshots.py REASONS). */
export const LEFT_OUT_REASONS = {
  excluded: 'matches an exclude pattern',
  'not-included': 'matches no include pattern',
  'too-large': 'is larger than the cap per file',
  'over-total': 'would take the snapshot over its cap in bytes',
  'too-many-files': 'would take the snapshot over its cap in files',
  unreadable: 'could not be read',
  'not-readable-by-participant': 'is not readable by the participant',
  special: 'is not a regular file, folder or link',
  changed: 'changed while it was read',
} as const;

export const leftOutSchema = z.object({ path: z.string(), reason: z.string(), size: whole.optional() });
export type LeftOut = z.infer<typeof leftOutSchema>;

/** A score log entry's `snapshot`: what of the solution folder was kept when the run started. */
export const entrySnapshotSchema = z.union([
  z.object({ id: hash, files: whole, bytes: whole, left_out: z.array(leftOutSchema), left_out_total: whole }),
  z.object({ error: z.string() }),
]);
export type EntrySnapshot = z.infer<typeof entrySnapshotSchema>;

/** One file of a kept solution, as `snapshot changes` describes its two sides. */
const fileRecordSchema = z.union([
  z.object({ path: z.string(), type: z.literal('file'), size: whole, sha256: hash, executable: z.boolean() }),
  z.object({ path: z.string(), type: z.literal('link'), target: z.string() }),
]);

export const snapshotChangesSchema = z.object({
  from: hash,
  /** Another snapshot's id, or "current" for the solution folder now. */
  to: z.union([hash, z.literal('current')]),
  changes: z.array(
    z.object({
      path: z.string(),
      change: z.enum(['added', 'removed', 'modified']),
      before: fileRecordSchema.nullable(),
      after: fileRecordSchema.nullable(),
      /** Either side looks binary (a NUL byte near its start): a diff editor cannot show it as text. */
      binary: z.boolean(),
    }),
  ),
  left_out_before: whole,
  left_out_after: whole,
});
export type SnapshotChanges = z.infer<typeof snapshotChangesSchema>;

/** One kept file's bytes (`snapshot show --json`). */
export const snapshotFileSchema = z.object({ path: z.string(), size: whole, base64: z.string() });

/** A kept solution as a .tar.gz (`snapshot export --json`). */
export const snapshotExportSchema = z.object({ snapshot: hash, size: whole, base64: z.string() });

const planSchema = z.object({
  write: z.array(z.string()),
  delete: z.array(z.string()),
  unchanged: whole,
  /** Paths a restore leaves as they are, because they were not kept on one side or the other. */
  untouched: z.array(z.object({ path: z.string(), why: z.string() })),
});
export type RestorePlan = z.infer<typeof planSchema>;

export const restorePlanReplySchema = z.object({ snapshot: hash, plan: planSchema });

export const restoreReplySchema = planSchema.extend({
  snapshot: hash,
  /** The solution folder as it was just before the restore: restoring it undoes the restore. */
  kept_as: z.object({ id: hash, files: whole, bytes: whole }),
});
export type RestoreReply = z.infer<typeof restoreReplySchema>;

// ---------------------------------------------------------------------------------------------
// The session record

const common = { index: whole, time: isoTime, elapsed_s: z.number().min(0).nullable(), prev_hash: hash, hash };

export const sessionRecordSchema = z.discriminatedUnion('kind', [
  z.object({ ...common, kind: z.literal('note'), text: z.string() }),
  z.object({ ...common, kind: z.literal('give_up'), reason: z.string(), choice: z.string().nullable() }),
  z.object({
    ...common,
    kind: z.literal('answers'),
    questions: z.array(endQuestionSchema),
    answers: z.array(z.object({ id: z.string(), value: z.union([z.string(), z.number()]).nullable() })),
    skipped: z.boolean(),
  }),
  z.object({ ...common, kind: z.literal('rules_confirmed'), rules: z.array(z.string()), rules_sha256: hash }),
  z.object({ ...common, kind: z.literal('restore'), snapshot: hash, kept_as: hash }),
  z.object({ ...common, kind: z.literal('submission'), answer: z.string(), answer_sha256: hash, job_id: z.string() }),
]);
export type SessionRecord = z.infer<typeof sessionRecordSchema>;

/** `records --json`: every record, and whether the chain checks. */
export const recordsReplySchema = z.object({
  records: z.array(sessionRecordSchema),
  intact: z.boolean(),
  first_bad: whole.nullable(),
  reason: z.string().nullable(),
});
export type RecordsReply = z.infer<typeof recordsReplySchema>;

/** `note`, `confirm-rules`, `answer --json`: the record written. */
export const recordReplySchema = z.object({ record: sessionRecordSchema });

/** What `status` adds for the participant's side. */
export const participantStatusSchema = z.object({
  rules: z.array(z.string()).nullable(),
  end_questions: z.array(endQuestionSchema).nullable(),
  give_up_reasons: z.array(z.string()).nullable(),
  away_after_minutes: z.number().int().min(1).nullable(),
  rules_confirmed_at: isoTime.nullable(),
  gave_up: z.object({ reason: z.string(), choice: z.string().nullable() }).nullable(),
  answered: z.boolean(),
  notes: whole,
  records_intact: z.boolean(),
});
export type ParticipantStatus = z.infer<typeof participantStatusSchema>;

/** One line for a left-out path, e.g. "checkpoint.pt (2.1 GB): is larger than the cap per file". */
export function describeLeftOut(item: LeftOut): string {
  const why = (LEFT_OUT_REASONS as Record<string, string>)[item.reason] ?? item.reason;
  return `${item.path}${item.size === undefined ? '' : ` (${formatBytes(item.size)})`}: ${why}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** The confirmation a restore asks for: what will be overwritten and deleted, and that it can be undone. */
export function restoreConfirmation(runLabel: string, plan: RestorePlan): { message: string; detail: string } {
  const list = (paths: readonly string[]) => (paths.length <= 8 ? paths.join(', ') : `${paths.slice(0, 8).join(', ')} and ${paths.length - 8} more`);
  const parts: string[] = [];
  if (plan.write.length) parts.push(`Overwrites or creates ${plan.write.length} file${plan.write.length === 1 ? '' : 's'}: ${list(plan.write)}.`);
  if (plan.delete.length)
    parts.push(`Deletes ${plan.delete.length} file${plan.delete.length === 1 ? '' : 's'} that ${runLabel} did not have: ${list(plan.delete)}.`);
  if (!plan.write.length && !plan.delete.length) parts.push('The solution folder already holds this solution; nothing changes.');
  if (plan.untouched.length)
    parts.push(
      `Leaves ${plan.untouched.length} file${plan.untouched.length === 1 ? '' : 's'} as they are (not kept): ${list(plan.untouched.map((u) => u.path))}.`,
    );
  parts.push('Your current files are kept first, so the restore can be undone from the history.');
  return { message: `Restore the solution of ${runLabel}?`, detail: parts.join('\n\n') };
}
