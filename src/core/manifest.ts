// The environment manifest (environments/<id>/manifest.json): the one definition of its rules. The runner
// checks manifests against the JSON Schema generated from it (environments/runner/contract.json, by
// scripts/generate-contract.ts), and environments/README.md's field table is generated from it too. `expected`
// is what an error message says a field should be; `description` is what the field means.
import * as z from './zod';
import { formatZodError } from './errors';
import { endQuestionsSchema, giveUpReasonsSchema, rulesSchema } from './participant';

export const ENVIRONMENT_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** A path inside the environment folder: not empty, no leading "/", no ".." part. */
export const RELATIVE_PATH = /^(?!\/)(?![\s\S]*(?:^|\/)\.\.(?:\/|$))[\s\S]+$/;
const relativePath = z
  .string()
  .regex(RELATIVE_PATH, 'must be a path inside the environment folder (no leading "/" and no "..")')
  .meta({ expected: 'a path inside the environment folder (no leading "/" and no "..")' });

const finite = z.number().finite();

const pattern = z
  .string()
  .min(1)
  .max(500)
  .refine(
    (p) =>
      !p.startsWith('!') &&
      !p.includes('\\') &&
      !p
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .includes('..'),
    {
      message: 'a pattern as in .gitignore, without "!", backslashes or ".."',
    },
  );

/** What each scoring run keeps of the solution folder (environments/runner/snapshots.py checks the same). */
const snapshotSettingsSchema = z
  .object({
    include: z.array(pattern).max(200).optional(),
    exclude: z.array(pattern).max(200).optional(),
    max_file_bytes: z
      .number()
      .int()
      .min(0)
      .max(2 ** 40)
      .optional(),
    max_total_bytes: z
      .number()
      .int()
      .min(0)
      .max(2 ** 42)
      .optional(),
    max_files: z.number().int().min(0).max(1_000_000).optional(),
  })
  .strict();

/** What the scoring gave on one solution, over several runs of the scorer. */
const calibrationRunsSchema = z
  .object({
    runs: z.number().int().min(1).max(10_000).meta({ description: 'How many times the scorer ran.' }),
    median: finite.meta({ description: 'The median score of the runs.' }),
    min: finite.meta({ description: 'The lowest score of the runs.' }),
    max: finite.meta({ description: 'The highest score of the runs.' }),
    /** For scores that are ln(time): the coefficient of variation of the times, in percent. */
    time_cv_percent: finite
      .min(0)
      .optional()
      .meta({ expected: 'a number of at least 0', description: 'For scores that are ln(time): the coefficient of variation of the times, in percent.' }),
  })
  .strict();

/** Where starting_score and reference_score come from: the measurement and the machine it ran on. */
export const calibrationSchema = z
  .object({
    date: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date written YYYY-MM-DD')
      .meta({ expected: 'a date written YYYY-MM-DD', description: 'When the calibration was measured.' }),
    gpu: z.string().min(1).max(200).meta({ description: 'The GPU it ran on, as nvidia-smi names it.' }),
    driver: z.string().min(1).max(100).meta({ description: 'The GPU driver version.' }),
    /** Versions of what the scoring ran on, e.g. {"python": "3.12.3", "torch": "2.11.0", "triton": "3.6.0"}. */
    software: z.record(z.string().min(1).max(40), z.string().min(1).max(100)).meta({
      expected: 'an object of names to version strings, e.g. {"torch": "2.11.0"}',
      description: 'Versions of what the scoring ran on, e.g. {"python": "3.12.3", "torch": "2.11.0"}.',
    }),
    starting: calibrationRunsSchema.meta({ description: 'The scores of the starting solution: runs, median, min, max.' }),
    reference: calibrationRunsSchema.meta({ description: 'The scores of the reference solution: runs, median, min, max.' }),
    method: z.string().min(1).max(2000).optional().meta({ description: 'How the scores were measured.' }),
  })
  .strict();

/**
 * A GPU environment whose scores have not been measured on its GPU yet: starting_score and reference_score
 * are estimates until the command given here has run. The pre-flight says so before the clock starts.
 */
export const pendingCalibrationSchema = z
  .object({
    status: z
      .literal('not calibrated')
      .meta({ expected: 'the text "not calibrated"', description: 'Marks starting_score and reference_score as estimates, not measurements.' }),
    estimate: z.string().min(1).max(2000).meta({ description: 'How starting_score and reference_score were estimated until they are measured.' }),
    command: z.string().min(1).max(2000).meta({ description: 'The command that measures them on the GPU named in hardware.gpu_model.' }),
  })
  .strict();

/** The longest answer Submit Answer takes, in characters. */
export const ANSWER_LIMIT = 65_536;

/** End scoring: what the participant is told of the answer's form, and the form it must have. */
export const submitSettingsSchema = z
  .object({
    format: z
      .string()
      .min(1)
      .max(500)
      .meta({ expected: 'text of 1 to 500 characters', description: "The answer's form as the instructions give it, shown in the answer box." }),
    pattern: z
      .string()
      .min(1)
      .max(500)
      .refine(
        (p) => {
          try {
            new RegExp(p, 'u');
            return true;
          } catch {
            return false;
          }
        },
        { message: 'a regular expression' },
      )
      .nullable()
      .default(null)
      .meta({
        expected: 'a regular expression (1 to 500 characters) or null',
        description: 'A regular expression the whole answer must match; an answer that does not is refused before it is sent.',
      }),
  })
  .strict();
export type SubmitSettings = z.infer<typeof submitSettingsSchema>;

/** Whether an answer has the form the organiser asks for: null when it does, else what to fix. */
export function checkAnswer(answer: string, submit: Pick<SubmitSettings, 'format' | 'pattern'>): string | null {
  if (answer.trim() === '') return 'Write an answer first.';
  if (answer.length > ANSWER_LIMIT) return `The answer is ${answer.length} characters long; at most ${ANSWER_LIMIT} are taken.`;
  if (submit.pattern !== null && !new RegExp(`^(?:${submit.pattern})$`, 'u').test(answer))
    return `The answer does not have the form the instructions ask for: ${submit.format}`;
  return null;
}

/**
 * What the participant sees of each score (scoring.visible). Hidden values are kept apart from the score log, in a
 * record only the organiser reads (the entry holds its hash); environments/README.md, "Hidden scores".
 *   all         everything, as before;
 *   none        that a run happened and whether it scored, never the value (METR's visible_to_agent: false);
 *   validation  the scorer's `score` (a validation score) is shown, its `hidden_score` (a test score) is hidden
 *               and is what counts for the organiser.
 */
export const SCORE_VISIBILITY = ['all', 'none', 'validation'] as const;
export const scoreVisibilitySchema = z.enum(SCORE_VISIBILITY);
export type ScoreVisibility = z.infer<typeof scoreVisibilitySchema>;

export const scoringSchema = z
  .object({
    /** argv of the scoring command, run in the environment folder; "{python}" is the runner's interpreter. */
    command: z.array(z.string().min(1)).min(1).meta({
      expected: 'a non-empty list of non-empty strings, e.g. ["{python}", "score.py"]',
      description: 'The scoring command as a list of arguments, run in the environment folder; "{python}" is the runner\'s Python.',
    }),
    direction: z.enum(['higher', 'lower']).meta({ description: 'Whether a higher or a lower score is better.' }),
    aggregation: z.enum(['best', 'last']).meta({ description: 'Which score counts: the best of the session, or the last.' }),
    starting_score: z.number().finite().meta({ description: 'The score of the starting solution (ys of the normalised score).' }),
    reference_score: z.number().finite().meta({ description: 'The score of the reference solution (yr); must differ from starting_score.' }),
    timeout_s: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .meta({ expected: 'a whole number of seconds from 1 to 86400', description: 'Seconds a scoring run may take before it is stopped (no score).' }),
    output_limit_bytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024)
      .meta({ expected: 'a whole number of bytes from 1024 to 67108864', description: "Bytes of the scorer's output kept and shown; the rest is counted." }),
    calibration: z.union([calibrationSchema, pendingCalibrationSchema]).optional().meta({
      expected: 'a calibration record, or {"status": "not calibrated", "estimate", "command"}',
      description: 'How starting_score and reference_score were measured (GPU environments), or that they are estimates still to be measured.',
    }),
    submit: submitSettingsSchema.optional().meta({
      description:
        'End scoring: the participant submits one answer (Submit Answer), which the scoring command scores once as the final entry; Score now is not offered.',
    }),
    aggregate_command: z.array(z.string().min(1)).min(1).optional().meta({
      expected: 'a non-empty list of non-empty strings',
      description:
        "Run once when the session has ended: an aggregate of the whole score log (e.g. a METR family's aggregate_scores), recorded for the organiser beside the counted score, never instead of it.",
    }),
    visible: scoreVisibilitySchema.default('all').meta({
      description:
        'What the participant sees of a score: "all"; "none" (that a run happened and whether it scored, never the value: the score and the scorer\'s message are hidden, as METR\'s visible_to_agent: false); "validation" (the scorer\'s score is shown and its hidden_score, e.g. the same measurement on held-out inputs, is hidden and counts for the organiser).',
    }),
  })
  .strict()
  .refine((s) => s.starting_score !== s.reference_score, {
    message: 'starting_score and reference_score must differ (the normalised score divides by their difference)',
  });

export const manifestSchema = z
  .object({
    id: z
      .string()
      .regex(ENVIRONMENT_ID, 'lowercase letters, digits and "-", at most 64 characters')
      .meta({ expected: 'lowercase letters, digits and "-", at most 64 characters', description: "The environment's id; the folder has the same name." }),
    title: z.string().min(1).max(200).meta({ description: 'What the participant sees as its name.' }),
    version: z.string().min(1).max(40).meta({ description: "The environment's version, recorded with the session." }),
    time_limit_s: z
      .number()
      .int()
      .min(60)
      .max(7 * 86_400)
      .default(8 * 3600)
      .meta({ expected: 'a whole number of seconds from 60 to 604800', description: "The session's length in seconds (pauses excluded)." }),
    instructions: relativePath.meta({ description: 'The instructions (Markdown, with TeX maths), shown once the session starts.' }),
    /** Whether the instructions may be read before the session starts (reading time normally counts). */
    instructions_before_start: z
      .boolean()
      .default(false)
      .meta({ description: 'Whether the instructions may be read before the start (reading time normally counts).' }),
    scoring: scoringSchema.meta({ description: 'How a solution is scored.' }),
    /**
     * The starting solution folder, copied to the participant's solution folder at setup; or
     * {"path", "snapshot"} with what each scoring run keeps of the solution (environments/README.md).
     */
    solution: z.union([relativePath, z.object({ path: relativePath, snapshot: snapshotSettingsSchema.optional() }).strict()]).meta({
      expected: 'a path inside the environment folder, or an object with path and snapshot',
      description: "The starting solution folder, copied to the participant's solution folder at setup; or {path, snapshot} with what each scoring run keeps.",
    }),
    hardware: z
      .object({
        gpus: z.number().int().min(0).max(64).default(0).meta({ description: 'GPUs the environment needs.' }),
        gpu_model: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .meta({ expected: 'a non-empty string or null', description: 'The GPU model the scores were calibrated on, if it matters.' }),
        min_free_disk_gb: z.number().min(0).default(1).meta({ expected: 'a number of at least 0', description: 'Free disk the environment needs, in GB.' }),
      })
      .strict()
      .default({ gpus: 0, gpu_model: null, min_free_disk_gb: 1 })
      .meta({ description: 'What the VM needs.' }),
    pauses_allowed: z.boolean().default(false).meta({ description: 'Whether the participant may pause the clock.' }),
    rules: rulesSchema.optional().meta({ description: "The study's rules, shown in the pre-flight and confirmed before the clock starts." }),
    end_questions: endQuestionsSchema.optional().meta({ description: 'Questions the participant may answer after the session ends.' }),
    give_up_reasons: giveUpReasonsSchema.optional().meta({ description: 'The reasons offered by Give Up…' }),
    away_after_minutes: z
      .number()
      .int()
      .min(1)
      .max(480)
      .optional()
      .meta({ expected: 'a whole number of minutes from 1 to 480', description: 'Minutes without activity after which pausing is offered.' }),
  })
  .strict();

/** The starting solution's folder, whichever form the manifest uses. */
export function solutionPath(manifest: Pick<Manifest, 'solution'>): string {
  return typeof manifest.solution === 'string' ? manifest.solution : manifest.solution.path;
}

export type Manifest = z.infer<typeof manifestSchema>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

export function parseManifest(text: string, source = 'manifest.json'): ParseResult<Manifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `${source} is not valid JSON (${(e as Error).message}). Fix the file and try again.` };
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, error: `${source} is not a valid environment manifest: ${formatZodError(parsed.error, raw)}` };
  }
  return { ok: true, value: parsed.data };
}
