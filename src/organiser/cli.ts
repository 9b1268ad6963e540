// The organiser's command-line tool (dist/organiser.js, npm bin "rebench-organiser"). The same bundle
// is what the extension's organiser commands load on first use, so both run one core.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs as nodeParseArgs } from 'node:util';
import { formatScore } from '../core/scores';
import { RUNNER_VERSION } from '../core/runnerProtocol';
import type { CollectProgress } from './collect';
import { HOSTS_FILE_HELP, loadHostSpecs } from './hosts';
import { OUTPUT_FILES, redrawCollection, runCollection, type CollectionSummary } from './output';
import { PREPARE_USAGE, prepareCommand } from './prepareCommand';
import {
  EXTEND_HELP,
  grantCli,
  isManyPrepare,
  PAUSE_HELP,
  PREPARE_MANY_HELP,
  prepareManyCli,
  type StudyUsageError,
  watchCli,
  WATCH_HELP,
  type StudyCliIo,
} from './studyCli';

// What the extension's organiser commands use from this bundle (src/ui/organiserCommands.ts).
export { loadHostSpecs } from './hosts';
export { OUTPUT_FILES, redrawCollection, runCollection } from './output';
export { prepareVm } from './prepare';
export { grantSummary, grantTime } from './grant';
export { StudyWatch } from './watch';
export { watchBodyHtml } from './watchHtml';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** The terminal, when stderr is one: the progress bar redraws itself there. */
  tty?: { write(text: string): void; columns: number };
  /** The terminal, when stdout is one: watch draws its table there. */
  screen?: StudyCliIo['screen'];
}

/** Exit codes; a script can tell "something to look at" from "the tool could not run". */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** Results written, but at least one host could not be read. */
  hostsFailed: 3,
  /** Results written, but at least one score log did not verify (takes precedence over 3). */
  notIntact: 4,
} as const;

const TOOL = 'rebench-organiser';

const MAIN_HELP = `${TOOL}: organiser tools for RE-Bench-style sessions.

Usage:
  ${TOOL} prepare --host HOST --admin USER ...    prepare a VM for a protected session, write its profile
  ${TOOL} prepare --admin USER ... TARGET...      prepare every VM of a hosts file or folder of profiles
  ${TOOL} watch [options] TARGET...               a live view of every VM, with what needs an organiser
  ${TOOL} extend TARGET --minutes N --reason TEXT     give a participant time back, on the record
  ${TOOL} infrastructure-pause TARGET --from T --to T --reason TEXT   count an outage as paused
  ${TOOL} collect --out DIR [options] TARGET...   fetch, verify and compare every score log
  ${TOOL} report COLLECTION.json [--out DIR]      write the table and plot again from a saved collection
  ${TOOL} help [COMMAND]

Run "${TOOL} help collect" for the details of a command.

Exit codes: 0 done; 1 the command failed; 2 bad arguments. collect also exits 3 when the results are
written but some host could not be read, and 4 when some score log is not intact (4 wins over 3);
watch --once exits 3 when something is flagged.`;

const COLLECT_HELP = `Usage: ${TOOL} collect --out DIR [options] TARGET...

Reads the session status and the score log of every VM through its runner (several at a time), has
the runner verify each log's hash chain, and writes into DIR:
  ${OUTPUT_FILES.csv}, ${OUTPUT_FILES.json}   one row per participant and environment: best, last and counted
                                 score (raw and normalised), runs, when the best was reached, session
                                 start/end, pauses, integrity
  ${OUTPUT_FILES.plot}                       normalised score over session time, a panel per environment
  ${OUTPUT_FILES.logs}/                          every score log byte for byte as the runner exported it
  ${OUTPUT_FILES.records}/                       every session record: notes, rules confirmed, restores, giving up, answers
  ${OUTPUT_FILES.solutions}/                     the kept solution of each counting run (.tar.gz), or of every run
  ${OUTPUT_FILES.collection}                everything read, for "${TOOL} report"
A host that cannot be read is recorded in the table and does not stop the others.

TARGET is a session profile (.json), a folder of profiles, a hosts file, or USER@HOST[:PORT].
${HOSTS_FILE_HELP}

Options:
  -o, --out DIR              output folder (created if missing; files in it are replaced)
  -j, --concurrency N        hosts read at the same time (default 8)
      --timeout SECONDS      limit per host, connection included (default 120)
      --connect-timeout SECONDS   limit for connecting and logging in (default 20)
      --known-hosts FILE     known_hosts file for hosts without a pinned fingerprint (repeatable;
                             default ~/.ssh/known_hosts). Unknown host keys are refused, never trusted.
  -i, --identity FILE        private key for hosts that name none (repeatable; default ~/.ssh/id_*)
      --no-agent             do not use ssh-agent (SSH_AUTH_SOCK)
      --all-solutions        keep the solution of every scored run, not only of the one that counts
      --admin USER           read protected VMs over this administrator's login (root, or passwordless sudo)
                             instead of the participant's: needed for hidden scores (scoring.visible)
  -q, --quiet                no progress output`;

const REPORT_HELP = `Usage: ${TOOL} report COLLECTION.json [--out DIR]

Writes ${OUTPUT_FILES.csv}, ${OUTPUT_FILES.json} and ${OUTPUT_FILES.plot} again from a ${OUTPUT_FILES.collection} that "collect" saved,
into DIR (default: the collection's folder). Nothing is fetched.`;

class UsageError extends Error {}

interface ParsedArgs {
  positional: string[];
  values: Map<string, string[]>;
  flags: Set<string>;
}

/**
 * Parses `--name value`, `--name=value`, `-x value`, `-x=value` and flags with node:util's parseArgs;
 * unknown options (and a value given to a flag, or short options run together) are usage errors.
 * `valueOptions` and `flagOptions` map each spelling ("--out", "-o") to the key it is stored under.
 */
function parseArgs(args: readonly string[], valueOptions: Record<string, string>, flagOptions: Record<string, string>): ParsedArgs {
  const spellings: Record<string, string> = { ...valueOptions, ...flagOptions };
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const spelling of Object.keys(spellings)) {
    if (!spelling.startsWith('--')) continue;
    config[spelling.slice(2)] = { type: spelling in valueOptions ? 'string' : 'boolean', multiple: true };
  }
  for (const [spelling, key] of Object.entries(spellings)) {
    if (spelling.startsWith('--')) continue;
    const long = Object.keys(spellings).find((s) => s.startsWith('--') && spellings[s] === key);
    if (long) config[long.slice(2)]!.short = spelling.slice(1);
  }
  // Not strict: every token comes back, and the messages below are the tool's own.
  const { tokens } = nodeParseArgs({ args: [...args], options: config, strict: false, allowPositionals: true, tokens: true });
  const out: ParsedArgs = { positional: [], values: new Map(), flags: new Set() };
  for (const token of tokens) {
    if (token.kind === 'positional') out.positional.push(token.value);
    if (token.kind !== 'option') continue;
    const arg = args[token.index]!;
    // An option is the whole argument or NAME=VALUE: "-qj" and "-ovalue" are not options of this tool.
    const whole = arg === token.rawName;
    const key = spellings[token.rawName];
    if (key === undefined || !(whole || arg.startsWith(`${token.rawName}=`))) throw new UsageError(`Unknown option "${arg}".`);
    const inline = whole ? undefined : arg.slice(token.rawName.length + 1);
    if (token.rawName in valueOptions) {
      const value = inline ?? token.value;
      if (value === undefined || value === '') throw new UsageError(`${token.rawName} needs a value.`);
      out.values.set(key, [...(out.values.get(key) ?? []), value]);
    } else if (inline === undefined) {
      out.flags.add(key);
    } else {
      throw new UsageError(`Unknown option "${arg}".`);
    }
  }
  return out;
}

function numberOption(parsed: ParsedArgs, key: string, name: string, min: number, max: number): number | undefined {
  const raw = parsed.values.get(key)?.at(-1);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${name} must be a number from ${min} to ${max}, not "${raw}".`);
  return n;
}

function phaseWord(p: CollectProgress): string {
  switch (p.phase) {
    case 'connecting':
      return 'connecting';
    case 'reading':
      return 'reading';
    case 'verifying':
      return 'verifying';
    default:
      return p.phase;
  }
}

/** Progress on a terminal: one bar redrawn in place. Elsewhere: one plain line per host that finished. */
function progressReporter(io: CliIo, quiet: boolean): { onProgress(p: CollectProgress): void; done(): void } {
  if (quiet) return { onProgress() {}, done() {} };
  const tty = io.tty;
  if (!tty) {
    return {
      onProgress(p) {
        if (p.phase === 'done') io.err(`[${p.finished}/${p.total}] ${p.spec.participant}: read`);
        if (p.phase === 'failed') io.err(`[${p.finished}/${p.total}] ${p.spec.participant}: FAILED: ${p.error ?? 'unknown error'}`);
      },
      done() {},
    };
  }
  const active = new Map<number, string>();
  let failed = 0;
  let last: CollectProgress | undefined;
  const draw = () => {
    if (!last) return;
    const width = 24;
    const filled = last.total ? Math.round((last.finished / last.total) * width) : width;
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const now = [...active.values()].slice(0, 3).join(', ');
    let line = `${bar} ${last.finished}/${last.total} hosts${failed ? `, ${failed} failed` : ''}${now ? `  ${now}` : ''}`;
    const columns = Math.max(40, tty.columns || 80);
    if (line.length > columns - 1) line = `${line.slice(0, columns - 2)}…`;
    tty.write(`\r\x1b[2K${line}`);
  };
  return {
    onProgress(p) {
      last = p;
      if (p.phase === 'done' || p.phase === 'failed') {
        active.delete(p.index);
        if (p.phase === 'failed') {
          failed++;
          // A failure is worth a line of its own above the bar.
          tty.write(`\r\x1b[2K${p.spec.participant}: FAILED: ${p.error ?? 'unknown error'}\n`);
        }
      } else if (p.phase !== 'waiting') {
        active.set(p.index, `${p.spec.participant} ${phaseWord(p)}`);
      }
      draw();
    },
    done() {
      if (last) tty.write('\r\x1b[2K');
    },
  };
}

function pad(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

/** What the organiser reads first: a short table and every problem by name. */
export function summaryLines(summary: CollectionSummary, cwd = process.cwd()): string[] {
  const rel = (f: string) => path.relative(cwd, f) || '.';
  const lines = [
    `Read ${summary.read} of ${summary.hosts} host${summary.hosts === 1 ? '' : 's'}; wrote ${rel(summary.files.csv)}, ${rel(summary.files.json)}, ${rel(summary.files.plot)}, ${rel(summary.files.collection)} and ${summary.files.logs.length} score log${summary.files.logs.length === 1 ? '' : 's'} in ${rel(path.join(summary.files.dir, OUTPUT_FILES.logs))}/.`,
    '',
    `${pad('participant', 24)} ${pad('environment', 22)} ${pad('counted', 10)} ${pad('normalised', 10)} ${pad('runs', 5)} ${pad('granted', 8)} integrity`,
  ];
  for (const row of summary.rows) {
    const normalised = row.counted_normalised === null ? '-' : formatScore(Number(row.counted_normalised.toFixed(3)));
    lines.push(
      `${pad(row.participant, 24)} ${pad(row.environment ?? '-', 22)} ${pad(row.error ? '-' : formatScore(row.counted_score), 10)} ${pad(normalised, 10)} ${pad(String(row.scoring_runs), 5)} ${pad(row.time_granted_s ? `${Math.round((row.time_granted_s / 60) * 10) / 10} min` : '-', 8)} ${row.error ? 'NOT READ' : row.integrity === 'intact' ? 'intact' : 'NOT INTACT'}`,
    );
  }
  const broken = summary.results.filter((r) => r.ok && r.integrity !== 'intact');
  const failed = summary.results.filter((r) => !r.ok);
  const warned = summary.results.filter((r) => r.warnings.length > 0);
  if (broken.length || failed.length || warned.length) lines.push('');
  for (const r of broken) lines.push(`Score log NOT intact: ${r.spec.participant} (${r.label}): ${r.integrityDetail ?? 'see the table'}`);
  for (const r of failed) lines.push(`Not read: ${r.spec.participant} (${r.label}): ${r.error ?? 'unknown error'}`);
  for (const r of warned) for (const w of r.warnings) lines.push(`Note: ${r.spec.participant}: ${w}`);
  return lines;
}

async function collectCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(
    args,
    {
      '--out': 'out',
      '-o': 'out',
      '--concurrency': 'concurrency',
      '-j': 'concurrency',
      '--timeout': 'timeout',
      '--connect-timeout': 'connectTimeout',
      '--known-hosts': 'knownHosts',
      '--identity': 'identity',
      '-i': 'identity',
      '--admin': 'admin',
    },
    { '--no-agent': 'noAgent', '--all-solutions': 'allSolutions', '--quiet': 'quiet', '-q': 'quiet', '--help': 'help', '-h': 'help' },
  );
  if (parsed.flags.has('help')) {
    io.out(COLLECT_HELP);
    return EXIT.ok;
  }
  const out = parsed.values.get('out')?.at(-1);
  if (!out) throw new UsageError('collect needs --out DIR, the folder for the results.');
  if (parsed.positional.length === 0)
    throw new UsageError('collect needs at least one TARGET: session profiles, a folder of them, a hosts file or USER@HOST[:PORT].');
  const concurrency = numberOption(parsed, 'concurrency', '--concurrency', 1, 64);
  const timeout = numberOption(parsed, 'timeout', '--timeout', 1, 86400);
  const connectTimeout = numberOption(parsed, 'connectTimeout', '--connect-timeout', 1, 600);
  const knownHosts = parsed.values.get('knownHosts')?.map((f) => path.resolve(f));
  for (const f of knownHosts ?? []) if (!fs.existsSync(f)) throw new UsageError(`--known-hosts ${f} does not exist.`);
  const identities = parsed.values.get('identity')?.map((f) => path.resolve(f));
  for (const f of identities ?? []) if (!fs.existsSync(f)) throw new UsageError(`--identity ${f} does not exist.`);

  const { specs, errors } = loadHostSpecs(parsed.positional);
  if (errors.length) {
    for (const e of errors) io.err(e);
    io.err(`Nothing was collected: fix the ${errors.length === 1 ? 'problem' : `${errors.length} problems`} above first.`);
    return EXIT.usage;
  }
  const progress = progressReporter(io, parsed.flags.has('quiet'));
  if (!parsed.flags.has('quiet')) io.err(`Collecting from ${specs.length} host${specs.length === 1 ? '' : 's'}…`);
  let summary: CollectionSummary;
  try {
    summary = await runCollection(specs, path.resolve(out), {
      concurrency,
      hostTimeoutMs: timeout === undefined ? undefined : timeout * 1000,
      connectTimeoutMs: connectTimeout === undefined ? undefined : connectTimeout * 1000,
      knownHostsFiles: knownHosts,
      identityFiles: identities,
      agent: parsed.flags.has('noAgent') ? false : undefined,
      allSolutions: parsed.flags.has('allSolutions'),
      admin: parsed.values.get('admin')?.at(-1),
      onProgress: (p) => progress.onProgress(p),
    });
  } finally {
    progress.done();
  }
  for (const line of summaryLines(summary)) io.out(line);
  if (summary.notIntact > 0) return EXIT.notIntact;
  if (summary.failed > 0) return EXIT.hostsFailed;
  return EXIT.ok;
}

async function reportCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(args, { '--out': 'out', '-o': 'out' }, { '--help': 'help', '-h': 'help' });
  if (parsed.flags.has('help')) {
    io.out(REPORT_HELP);
    return EXIT.ok;
  }
  if (parsed.positional.length !== 1) throw new UsageError(`report needs exactly one ${OUTPUT_FILES.collection}.`);
  const file = path.resolve(parsed.positional[0]!);
  const out = parsed.values.get('out')?.at(-1);
  let redrawn: ReturnType<typeof redrawCollection>;
  try {
    redrawn = redrawCollection(file, out === undefined ? undefined : path.resolve(out));
  } catch (e) {
    io.err((e as Error).message);
    return EXIT.usage;
  }
  const { files, hosts, generatedAt } = redrawn;
  io.out(`Wrote ${files.csv}, ${files.json} and ${files.plot} from ${hosts} host${hosts === 1 ? '' : 's'} collected ${generatedAt}.`);
  return EXIT.ok;
}

type Command = (args: string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  prepare: { run: (args, io) => (isManyPrepare(args) ? prepareManyCli(args, io) : prepareCommand(args, io)), help: `${PREPARE_USAGE}\n\n${PREPARE_MANY_HELP}` },
  watch: { run: (args, io) => watchCli(args, io), help: WATCH_HELP },
  extend: { run: grantCli('extend'), help: EXTEND_HELP },
  'infrastructure-pause': { run: grantCli('infrastructure-pause'), help: PAUSE_HELP },
  collect: { run: collectCommand, help: COLLECT_HELP },
  report: { run: reportCommand, help: REPORT_HELP },
};

/** Runs the tool with the arguments after the program name; resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    io.out(MAIN_HELP);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === '--version') {
    io.out(`${TOOL} for runner ${RUNNER_VERSION}`);
    return EXIT.ok;
  }
  if (command === 'help') {
    const topic = rest[0];
    if (topic === undefined) io.out(MAIN_HELP);
    else if (COMMANDS[topic]) io.out(COMMANDS[topic].help);
    else {
      io.err(`No command "${topic}". The commands are: ${Object.keys(COMMANDS).join(', ')}.`);
      return EXIT.usage;
    }
    return EXIT.ok;
  }
  const entry = COMMANDS[command];
  if (!entry) {
    io.err(`Unknown command "${command}". The commands are: ${Object.keys(COMMANDS).join(', ')}; "${TOOL} --help" explains them.`);
    return EXIT.usage;
  }
  try {
    return await entry.run([...rest], io);
  } catch (e) {
    // The study commands' usage errors are known by their brand (StudyUsageError.usage).
    if (e instanceof UsageError || (e as Partial<StudyUsageError> | null)?.usage === true) {
      io.err(`${(e as Error).message} ("${TOOL} help ${command}" shows the options.)`);
      return EXIT.usage;
    }
    io.err(`${command} failed: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT.failed;
  }
}

function processIo(): CliIo {
  const stderr = process.stderr;
  // Output piped into `head` and closed early is not an error of the tool.
  for (const stream of [process.stdout, stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => stderr.write(`${line}\n`),
    tty: stderr.isTTY ? { write: (t) => stderr.write(t), columns: stderr.columns } : undefined,
    screen: process.stdout.isTTY
      ? {
          write: (t) => process.stdout.write(t),
          get columns() {
            return process.stdout.columns;
          },
          get rows() {
            return process.stdout.rows;
          },
        }
      : undefined,
  };
}

if (require.main === module) {
  void main(process.argv.slice(2), processIo()).then((code) => {
    process.exitCode = code;
    // Nothing should be left running; if a connection lingers anyway, it must not hold the tool open.
    setTimeout(() => process.exit(code), 2000).unref();
  });
}
