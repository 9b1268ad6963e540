// Prepares a VM for a METR Task Standard family over an administrator's connection: uploads
// environments/metr and the family (and the secrets file) to a private staging folder, runs
// `machine.py prepare` as root (the METR-like set-up, install() and start(t) once), measures the starting
// score by one intermediate score right after start (once: a second run reads the record), and derives the
// scoring direction and aggregation from the organiser's choice or the family's aggregate_scores on two
// trial logs. The staging folder is removed afterwards, whatever happened.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as z from '../core/zod';
import { formatZodError } from '../core/errors';
import { submitSettingsSchema } from '../core/manifest';
import { type Target, shellQuote } from '../core/target';
import {
  aggregateReportSchema,
  type Aggregation,
  deriveScoring,
  type Direction,
  type MetrDescribe,
  metrDescribeSchema,
  type MetrTaskSettings,
  parseMetrManifest,
  type ScoringChoice,
  secretNames,
  taskSettings,
  TRIAL_SCORES,
  trialLog,
} from './metrFamily';

export class MetrPrepareError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetrPrepareError';
  }
}

export interface MetrPrepareOptions {
  /** Connected as the administrator (root, or a user with passwordless sudo). */
  target: Target;
  /** The family folder here: <family>.py, maybe manifest.yaml, assets/, requirements.txt. */
  familyDir: string;
  task: string;
  /** NAME=VALUE lines for the family's required_environment_variables. */
  secretsFile?: string;
  familyPython?: string;
  direction?: Direction;
  aggregation?: Aggregation;
  referenceScore?: number;
  /** End scoring: the regular expression a submitted answer must match (checked before it is sent). */
  answerPattern?: string;
  /** End scoring: the answer's form as shown in the answer box (default: the instructions' "Answer format:" line). */
  answerFormat?: string;
  /** environments/metr here (bridge.py, entries.py, machine.py). */
  metrDir: string;
  /** Where machine.py keeps its record and the secrets (default /etc/rebench/metr). */
  stateDir?: string;
  /** Where the family is copied (default /root, as METR's image). */
  familyRoot?: string;
  /** Replace a family whose start(t) already ran (start(t) runs again for the new one). */
  force?: boolean;
  /** Lets the runner's scoring user run the family's intermediate score as root (machine.py install-scoring). */
  scoring?: { user: string; timeoutS: number };
  onStep?: (step: MetrStep) => void;
  /** The family's own output (install(), start(t), the starting score's run). */
  onOutput?: (text: string) => void;
}

export interface MetrStep {
  item: string;
  status: 'changed' | 'in place' | 'skipped';
  message: string;
}

export interface MetrPrepareResult {
  family: string;
  task: string;
  describe: MetrDescribe;
  settings: MetrTaskSettings;
  steps: MetrStep[];
  /** null for an end-scoring family (nothing to measure before a submission). */
  startingScore: { score: number | null; message: string; measuredAt: string; status: 'changed' | 'in place' } | null;
  scoring: ScoringChoice;
  /** The runner's scoring command for this family (with options.scoring). */
  scoringCommand?: string[];
  /** The runner's command for METR's aggregate_scores once the session ended (intermediate families that have it). */
  aggregateCommand?: string[];
}

const stepLine = z.object({ type: z.literal('step'), item: z.string(), status: z.enum(['changed', 'in place', 'skipped']), message: z.string() });
const errorLine = z.object({ type: z.literal('error'), message: z.string() });
const resultLine = z.object({ type: z.literal('result'), family: z.string(), task: z.string(), describe: metrDescribeSchema });
const startingLine = z.object({
  type: z.literal('starting'),
  status: z.enum(['changed', 'in place']),
  score: z.number().nullable(),
  message: z.string(),
  measured_at: z.string(),
});
const scoringLine = z.object({
  type: z.literal('scoring'),
  status: z.enum(['changed', 'in place']),
  command: z.array(z.string()).min(1),
  aggregate_command: z.array(z.string()).min(1).optional(),
  message: z.string(),
});
const machineLine = z.discriminatedUnion('type', [stepLine, errorLine, resultLine, startingLine, scoringLine]);
type MachineLine = z.infer<typeof machineLine>;

const FAMILY_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;
const SKIPPED = new Set(['.git', '__pycache__']);
const MAX_FAMILY_BYTES = 512 * 1024 * 1024;

/** The family's files (relative paths), checked: no links, nothing outside, a sane size. */
export function familyFiles(dir: string): { family: string; files: string[] } {
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new MetrPrepareError(`the family folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new MetrPrepareError(`${dir} is not a folder: give the METR task family's folder (it holds <family>.py)`);
  const family = path.basename(abs);
  if (!FAMILY_NAME.test(family))
    throw new MetrPrepareError(`the family folder's name "${family}" is not a Python module name: METR families are named like their <family>.py`);
  if (!fs.existsSync(path.join(abs, `${family}.py`)))
    throw new MetrPrepareError(`${dir} has no ${family}.py: a METR task family folder holds <family>.py, named like the folder`);
  const files: string[] = [];
  let bytes = 0;
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(abs, rel), { withFileTypes: true })) {
      if (SKIPPED.has(entry.name)) continue;
      const r = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) throw new MetrPrepareError(`the family folder holds a symbolic link, ${r}: copy what it points to instead`);
      if (entry.isDirectory()) walk(r);
      else if (entry.isFile()) {
        bytes += fs.statSync(path.join(abs, r)).size;
        files.push(r);
      } else throw new MetrPrepareError(`the family folder holds ${r}, which is neither a file nor a folder`);
    }
  };
  walk('');
  if (bytes > MAX_FAMILY_BYTES)
    throw new MetrPrepareError(
      `the family folder holds ${Math.round(bytes / 2 ** 20)} MiB; stage large assets on the VM in install() instead (at most ${MAX_FAMILY_BYTES / 2 ** 20} MiB are uploaded)`,
    );
  return { family, files: files.sort() };
}

export async function prepareMetrFamily(o: MetrPrepareOptions): Promise<MetrPrepareResult> {
  const { family, files } = familyFiles(o.familyDir);
  let settings: MetrTaskSettings;
  const manifestPath = path.join(o.familyDir, 'manifest.yaml');
  try {
    settings = taskSettings(fs.existsSync(manifestPath) ? parseMetrManifest(fs.readFileSync(manifestPath, 'utf8')) : {}, o.task);
  } catch (e) {
    throw new MetrPrepareError(`${o.familyDir}/${(e as Error).message}`);
  }
  let secrets: string | undefined;
  if (o.secretsFile) {
    try {
      secrets = fs.readFileSync(o.secretsFile, 'utf8');
    } catch (e) {
      throw new MetrPrepareError(`cannot read the secrets file ${o.secretsFile}: ${(e as Error).message}`);
    }
    try {
      secretNames(secrets, o.secretsFile);
    } catch (e) {
      throw new MetrPrepareError((e as Error).message);
    }
  }
  for (const f of ['bridge.py', 'entries.py', 'machine.py']) {
    if (!fs.existsSync(path.join(o.metrDir, f))) throw new MetrPrepareError(`${o.metrDir} has no ${f}: this installation is incomplete`);
  }

  const t = o.target;
  const uid = await t.exec('id -u');
  const asRoot = uid.stdout.trim() === '0';
  const sudo = asRoot ? '' : 'sudo -n ';
  if (!asRoot) {
    const check = await t.exec('sudo -n true');
    if (check.code !== 0)
      throw new MetrPrepareError(
        `the administrator's login on ${t.label} cannot run sudo without a password (${check.stderr.trim() || `exit ${check.code}`}): use root or a user with passwordless sudo`,
      );
  }
  const stage = `${await t.home()}/.rebench-metr-prepare`;
  const q = shellQuote;
  // -B: root writes no bytecode into the administrator's staging folder.
  const machine = `${sudo}python3 -B ${q(`${stage}/metr/machine.py`)}${o.stateDir ? ` --state-dir ${q(o.stateDir)}` : ''}`;
  const steps: MetrStep[] = [];

  const run = async (command: string, what: string): Promise<MachineLine[]> => {
    const lines: MachineLine[] = [];
    let pending = '';
    const take = (line: string) => {
      if (!line.trim()) return;
      let parsed: MachineLine;
      try {
        parsed = machineLine.parse(JSON.parse(line));
      } catch {
        o.onOutput?.(`${line}\n`);
        return;
      }
      lines.push(parsed);
      if (parsed.type === 'step') {
        steps.push({ item: parsed.item, status: parsed.status, message: parsed.message });
        o.onStep?.(steps[steps.length - 1] as MetrStep);
      }
    };
    const r = await t.exec(command, {
      onStdout: (text) => {
        pending += text;
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        parts.forEach(take);
      },
      onStderr: (text) => o.onOutput?.(text),
    });
    take(pending);
    const error = lines.find((l) => l.type === 'error');
    if (error) throw new MetrPrepareError(error.message);
    if (r.code !== 0)
      throw new MetrPrepareError(`${what} failed on ${t.label} (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(-2000) || r.stdout.trim().slice(-2000)}`);
    return lines;
  };

  const mk = await t.exec(`${sudo}rm -rf ${q(stage)} && umask 077 && mkdir -p ${q(stage)}`);
  if (mk.code !== 0) throw new MetrPrepareError(`cannot make the staging folder ${stage} on ${t.label}: ${mk.stderr.trim()}`);
  try {
    for (const f of ['bridge.py', 'entries.py', 'machine.py']) await t.writeFile(`${stage}/metr/${f}`, fs.readFileSync(path.join(o.metrDir, f)), 0o600);
    for (const rel of files) {
      const full = path.join(o.familyDir, rel);
      await t.writeFile(`${stage}/${family}/${rel}`, fs.readFileSync(full), fs.statSync(full).mode & 0o100 ? 0o700 : 0o600);
    }
    if (secrets !== undefined) await t.writeFile(`${stage}/secrets.env`, secrets, 0o600);

    const prepareArgs = ['prepare', '--family-src', `${stage}/${family}`, '--task', o.task];
    if (secrets !== undefined) prepareArgs.push('--secrets', `${stage}/secrets.env`);
    if (o.familyPython) prepareArgs.push('--family-python', o.familyPython);
    if (o.familyRoot) prepareArgs.push('--family-root', o.familyRoot);
    if (o.force) prepareArgs.push('--force');
    const lines = await run(`${machine} ${prepareArgs.map(q).join(' ')}`, 'preparing the family');
    const result = lines.find((l) => l.type === 'result');
    if (!result || result.type !== 'result') throw new MetrPrepareError(`machine.py prepare on ${t.label} ended without a result`);
    const describe = result.describe;

    let startingScore: MetrPrepareResult['startingScore'] = null;
    const trials = [];
    if (describe.scoring === 'intermediate') {
      const starting = (await run(`${machine} starting-score`, 'measuring the starting score')).find((l) => l.type === 'starting');
      if (!starting || starting.type !== 'starting') throw new MetrPrepareError(`machine.py starting-score on ${t.label} gave no score record`);
      startingScore = { score: starting.score, message: starting.message, measuredAt: starting.measured_at, status: starting.status };
      o.onStep?.({
        item: 'starting score',
        status: starting.status,
        message: starting.score === null ? `no score: ${starting.message}` : `${starting.score} (${starting.message})`,
      });
      if (describe.has_aggregate_scores) {
        for (const [i, scores] of TRIAL_SCORES.entries()) {
          const input = `${stage}/trial-${i}.json`;
          await t.writeFile(input, JSON.stringify(trialLog(scores)), 0o644);
          const r = await t.exec(`${machine} call --method aggregate_scores --input ${q(input)}`, { onStderr: (text) => o.onOutput?.(text) });
          try {
            trials.push(aggregateReportSchema.parse(JSON.parse(r.stdout)));
          } catch {
            throw new MetrPrepareError(
              `aggregate_scores on a trial log gave no readable result on ${t.label} (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(-1000)}`,
            );
          }
        }
      }
    }
    let scoring: ScoringChoice;
    try {
      scoring = deriveScoring({
        scoring: describe.scoring === 'end' ? 'end' : 'intermediate',
        ...(o.direction ? { direction: o.direction } : {}),
        ...(o.aggregation ? { aggregation: o.aggregation } : {}),
        ...(trials.length ? { trials } : {}),
        ...(startingScore ? { startingScore: startingScore.score } : {}),
        ...(o.referenceScore !== undefined ? { referenceScore: o.referenceScore } : {}),
      });
    } catch (e) {
      throw new MetrPrepareError((e as Error).message);
    }
    let scoringCommand: string[] | undefined;
    let aggregateCommand: string[] | undefined;
    if (o.scoring && (describe.scoring === 'intermediate' || describe.scoring === 'end')) {
      const line = (
        await run(`${machine} install-scoring --scoring-user ${q(o.scoring.user)} --timeout ${o.scoring.timeoutS}`, 'letting the scoring user score the family')
      ).find((l) => l.type === 'scoring');
      if (!line || line.type !== 'scoring') throw new MetrPrepareError(`machine.py install-scoring on ${t.label} gave no scoring command`);
      scoringCommand = line.command;
      aggregateCommand = line.aggregate_command;
      const step: MetrStep = { item: 'scoring', status: line.status, message: line.message };
      steps.push(step);
      o.onStep?.(step);
    }
    return { family, task: o.task, describe, settings, steps, startingScore, scoring, scoringCommand, aggregateCommand };
  } finally {
    await t.exec(`${sudo}rm -rf ${q(stage)}`).catch(() => undefined);
  }
}

/** The id of our environment for a family's task (lowercase letters, digits and "-"). */
export function metrEnvironmentId(family: string, task: string): string {
  return `metr-${family}-${task}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/-$/, '')
    .slice(0, 64);
}

/** Our environment folder for a prepared METR family: manifest.json, the instructions, an empty starting
 * solution (the family's start(t) put the participant's files in /home/agent). Returns the folder. */
export function writeMetrEnvironment(
  dir: string,
  r: MetrPrepareResult,
  o: { referenceScore?: number; startingScore?: number; answerPattern?: string; answerFormat?: string; timeoutS: number },
): string {
  const end = r.describe.scoring === 'end';
  if (!r.scoringCommand || (r.describe.scoring !== 'intermediate' && !end)) {
    throw new MetrPrepareError(
      `${r.family} has no scoring the runner can call on the VM; prepare stops here. The VM's METR set-up (prepared above) stays as it is.`,
    );
  }
  if (!end && (o.startingScore !== undefined || o.answerPattern !== undefined || o.answerFormat !== undefined)) {
    throw new MetrPrepareError(
      `${r.family} scores while the participant works (intermediate_score): --starting-score, --answer-pattern and --answer-format are for end-scoring families (the starting score is measured on the VM).`,
    );
  }
  const starting = end ? o.startingScore : r.startingScore?.score;
  if (end && starting === undefined) {
    throw new MetrPrepareError(
      `${r.family} scores one submitted answer at the end (score(t, submission)), so no starting score can be measured before the session: give the score a trivial answer gets with --starting-score (and the reference with --reference-score).`,
    );
  }
  if (starting === null || starting === undefined) {
    throw new MetrPrepareError(
      `the starting score could not be measured: ${r.startingScore?.message ?? 'no score'}. Fix what the message names on the VM, then run prepare again (start(t) is not run again).`,
    );
  }
  if (o.referenceScore === undefined)
    throw new MetrPrepareError(`give the reference score with --reference-score (the starting score ${end ? 'given' : 'measured on the VM'} is ${starting}).`);
  if (o.referenceScore === starting)
    throw new MetrPrepareError(
      `--reference-score ${o.referenceScore} equals the starting score ${end ? 'given' : 'measured on the VM'}; the normalised score needs them to differ.`,
    );
  let submit: { format: string; pattern: string | null } | undefined;
  if (end) {
    const parsed = submitSettingsSchema.safeParse({
      format: o.answerFormat ?? answerFormatOf(r.describe.instructions),
      pattern: o.answerPattern ?? null,
    });
    if (!parsed.success) throw new MetrPrepareError(`--answer-pattern or --answer-format: ${formatZodError(parsed.error)}`);
    submit = parsed.data;
  }
  const id = metrEnvironmentId(r.family, r.task);
  const envDir = path.join(dir, id);
  fs.mkdirSync(path.join(envDir, 'solution'), { recursive: true });
  fs.writeFileSync(path.join(envDir, 'solution', 'README.md'), `The task's files are in /home/agent (METR task family ${r.family}, task ${r.task}).\n`);
  const notes = r.settings.scoringInstructions ? `\n\n## Scoring\n\n${r.settings.scoringInstructions}\n` : '';
  fs.writeFileSync(path.join(envDir, 'instructions.md'), `${r.describe.instructions}${notes}`);
  const manifest = {
    id,
    title: `${r.family} / ${r.task}`.slice(0, 200),
    version: 'metr-0.3.0',
    time_limit_s: 8 * 3600,
    instructions: 'instructions.md',
    instructions_before_start: false,
    scoring: {
      command: r.scoringCommand,
      direction: r.scoring.direction,
      aggregation: r.scoring.aggregation,
      starting_score: starting,
      reference_score: o.referenceScore,
      timeout_s: o.timeoutS,
      ...(submit ? { submit } : {}),
      ...(r.aggregateCommand && !end ? { aggregate_command: r.aggregateCommand } : {}),
      // visible_to_agent: false: the participant sees that each run happened and whether it scored, never the
      // value or the family's message (environments/README.md, "Hidden scores").
      visible: r.settings.visible ? 'all' : 'none',
    },
    solution: 'solution',
    hardware: { gpus: r.settings.gpus, gpu_model: r.settings.gpuModel, min_free_disk_gb: r.settings.minFreeDiskGb },
    pauses_allowed: false,
  };
  fs.writeFileSync(path.join(envDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return envDir;
}

/** The answer's form as the instructions give it: their "Answer format:" line, else a plain request. */
export function answerFormatOf(instructions: string): string {
  const line = instructions.split('\n').find((l) => /^\s*(?:\*\*)?answer format(?:\*\*)?\s*:/i.test(l));
  const text = line
    ?.replace(/^\s*(?:\*\*)?answer format(?:\*\*)?\s*:\s*/i, '')
    .replace(/\*\*/g, '')
    .trim();
  return (text || 'your answer, in the form the instructions ask for').slice(0, 500);
}
