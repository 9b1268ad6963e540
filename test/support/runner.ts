// Runs the built runner (environments/runner.pyz) as a real process in a temporary runner home, for system tests.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { z } from 'zod';
import { errorReplySchema, type RunnerError } from '../../src/core/runnerProtocol';
import { until } from './wait';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const RUNNER_PATH = path.join(REPO_ROOT, 'environments', 'runner.pyz');
/** The runner's package, which the build makes into RUNNER_PATH. */
export const RUNNER_PACKAGE = path.join(REPO_ROOT, 'environments', 'runner');
/** Environments shipped to VMs (the demo). */
export const SHIPPED_ENVIRONMENTS = path.join(REPO_ROOT, 'environments');
/** Test-only environments (slow-scorer, tricky-scorer). */
export const FIXTURE_ENVIRONMENTS = path.join(REPO_ROOT, 'test', 'fixtures', 'environments');
/**
 * The interpreter that runs the runner: $REBENCH_TEST_PYTHON, else what `python3` resolves to (asked once,
 * so that a version-manager shim does not add its start-up time to every call).
 */
export const PYTHON = process.env.REBENCH_TEST_PYTHON || resolvePython('python3');

/** Builds environments/runner.pyz from the package (it is reproducible, so an up-to-date file is left as it is). */
export function buildRunner(): void {
  execFileSync(PYTHON, [path.join(REPO_ROOT, 'scripts', 'build-runner.py')], { stdio: 'ignore' });
}
// Every test reads the runner built from the sources as they are now.
buildRunner();

function resolvePython(name: string): string {
  try {
    const found = execFileSync(name, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    return found || name;
  } catch {
    return name;
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Kills the runner and fails after this long (default 30 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Interpreter for this run (default PYTHON). */
  python?: string;
}

/** Runs `python3 runner.pyz --home HOME ...args` and collects its output. */
export function runRunner(home: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(opts.python ?? PYTHON, [RUNNER_PATH, '--home', home, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runner ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function describeRun(args: readonly string[], r: RunResult): string {
  return `runner ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** Parses one JSON document with a schema, failing with the text and the problem. */
export function parseWith<T>(schema: z.ZodType<T>, text: string, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${what}: not JSON (${(e as Error).message}): ${text}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new Error(`${what}: unexpected shape: ${parsed.error.message}\n${text}`);
  return parsed.data;
}

/** The non-empty lines of a JSON-lines output, each parsed with the schema. */
export function parseLines<T>(schema: z.ZodType<T>, text: string, what: string): T[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => parseWith(schema, l, `${what} line ${i}`));
}

/** The records of a runner home's JSON-lines file (events.jsonl, records.jsonl), as written; none when it is missing. */
export function jsonLinesOf(file: string): Array<Record<string, unknown>> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface MakeHomeOptions {
  /** Folders holding environment folders, searched in order (default: test fixtures, then shipped). */
  sources?: string[];
  /** Deep-merged into the environment's manifest.json (e.g. { scoring: { aggregation: 'last' } }). */
  manifest?: Record<string, unknown>;
  /** Other environments to install next to the main one. */
  alsoInstall?: string[];
  /** Run `setup` (default true). */
  setup?: boolean;
  /** Interpreter for every run in this home (default PYTHON). */
  python?: string;
}

export interface TestHome {
  home: string;
  envId: string;
  environmentsDir: string;
  envDir: string;
  solutionDir: string;
  stateDir: string;
  run(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Runs with --json, checks the exit code and parses stdout with the schema. */
  json<T>(schema: z.ZodType<T>, args: readonly string[], expectCode?: number): Promise<T>;
  /** Runs with --json, expects the error reply with this code, and returns the error. */
  error(args: readonly string[], code: RunnerError['code'], exitCode: number): Promise<RunnerError>;
  /** Rewrites the manifest as the original deep-merged with patch. */
  patchManifest(patch: Record<string, unknown>): void;
  writeSolution(name: string, content: string): void;
  statePath(...parts: string[]): string;
  /** The events log's records. */
  events(): Array<Record<string, unknown>>;
  cleanup(): void;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepMerge(base: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const current = out[k];
    out[k] = isObject(current) && isObject(v) ? deepMerge(current, v) : v;
  }
  return out;
}

function findEnvironment(envId: string, sources: string[]): string {
  for (const s of sources) {
    const dir = path.join(s, envId);
    if (fs.existsSync(path.join(dir, 'manifest.json'))) return dir;
  }
  throw new Error(`no environment ${envId} in ${sources.join(', ')}`);
}

/** A fresh runner home with the environment installed (and set up, unless told otherwise). */
export async function makeHome(envId: string, options: MakeHomeOptions = {}): Promise<TestHome> {
  const sources = options.sources ?? [FIXTURE_ENVIRONMENTS, SHIPPED_ENVIRONMENTS];
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-home-'));
  const environmentsDir = path.join(home, 'environments');
  const envDir = path.join(environmentsDir, envId);
  for (const id of [envId, ...(options.alsoInstall ?? [])]) {
    fs.cpSync(findEnvironment(id, sources), path.join(environmentsDir, id), { recursive: true });
  }
  const manifestPath = path.join(envDir, 'manifest.json');
  const original = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  const solutionDir = path.join(home, 'solution');
  const stateDir = path.join(home, 'state');

  const run = (args: readonly string[], opts?: RunOptions) => runRunner(home, args, { python: options.python, ...opts });
  const h: TestHome = {
    home,
    envId,
    environmentsDir,
    envDir,
    solutionDir,
    stateDir,
    run,
    async json<T>(schema: z.ZodType<T>, args: readonly string[], expectCode = 0): Promise<T> {
      const r = await run([...args, '--json']);
      if (r.code !== expectCode) throw new Error(`expected exit ${expectCode}: ${describeRun(args, r)}`);
      return parseWith(schema, r.stdout, `runner ${args.join(' ')}`);
    },
    async error(args: readonly string[], code: RunnerError['code'], exitCode: number): Promise<RunnerError> {
      const r = await run([...args, '--json']);
      if (r.code !== exitCode) throw new Error(`expected exit ${exitCode}: ${describeRun(args, r)}`);
      const reply = parseWith(errorReplySchema, r.stdout, `runner ${args.join(' ')}`);
      if (reply.error.code !== code) throw new Error(`expected error ${code}: ${describeRun(args, r)}`);
      return reply.error;
    },
    patchManifest(patch: Record<string, unknown>) {
      fs.writeFileSync(manifestPath, JSON.stringify(deepMerge(original, patch), null, 2));
    },
    writeSolution(name: string, content: string) {
      fs.writeFileSync(path.join(solutionDir, name), content);
    },
    statePath: (...parts: string[]) => path.join(stateDir, ...parts),
    events() {
      const file = path.join(stateDir, 'events.jsonl');
      if (!fs.existsSync(file)) return [];
      return fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    cleanup() {
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
  if (options.manifest) h.patchManifest(options.manifest);
  if (options.setup ?? true) {
    const r = await run(['setup', '--environment', envId, '--solution-dir', solutionDir, '--json']);
    if (r.code !== 0) throw new Error(`setup failed: ${describeRun(['setup'], r)}`);
  }
  return h;
}

/** Polls until check() is true, or fails after timeoutMs (test/support/wait.ts). */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  await until(what, check, timeoutMs);
}

/** Whether a process is still running (a zombie, already exited but not reaped, counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
