// `prepare`: the command-line face of src/organiser/prepare.ts, for scripting the preparation of many VMs.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage, formatZodError } from '../core/errors';
import { submitSettingsSchema } from '../core/manifest';
import { parsePinnedFingerprint } from '../core/ssh/hostKey';
import { type PrepareOptions, type PrepareResult, prepareVm } from './prepare';
import { DEFAULT_SCORING_USER, fmt, PrepareError, VM_USER_NAME } from './prepareCore';

export const PREPARE_USAGE = `usage: rebench-organiser prepare --host HOST --admin USER --participant USER --environment DIR [options]
       rebench-organiser prepare --host HOST --admin USER --participant agent --metr-family DIR --task NAME [options]

Prepares one VM for a protected RE-Bench session over SSH, and writes the participant's session profile.
Running it again changes nothing that is already in place; a run cut short is finished by running it again.

Connecting (as an administrator: root, or a user with passwordless sudo)
  --host HOST                   the VM's address; the profile gives the participant the same address
  --port N                      the VM's SSH port (default 22)
  --admin USER                  the administrator's login on the VM
  -i, --identity FILE           the administrator's private key (repeatable; default: whichever of
                                ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa and ~/.ssh/id_rsa exist)
  --no-agent                    do not offer the keys of the SSH agent (SSH_AUTH_SOCK)
  --password-env NAME           the administrator's password is in environment variable NAME (it is
                                answered to keyboard-interactive password prompts; never put it on the
                                command line)
  --key-passphrase-env NAME     the passphrase of the -i key is in environment variable NAME
  --host-key-fingerprint FP     the VM's host-key fingerprint ("SHA256:...", from ssh-keygen -lf on the VM)
  --known-hosts FILE            a known_hosts file to check host keys against (repeatable; default
                                ~/.ssh/known_hosts)
  --accept-new-host-key         trust a host key that nothing above vouches for (first contact with a
                                fresh VM); it is printed, and pinned in the profile
  --jump [USER@]HOST[:PORT]     a jump host: participants log in there as USER (default: --participant),
                                and the profile says so; the administrator connects through it too
  --jump-admin USER             the administrator's login on the jump host (default: --admin)
  --jump-host-key-fingerprint FP  the jump host's host-key fingerprint

What to set up on the VM
  --participant USER            the participant's login user
  --environment DIR             the environment folder to install (holds manifest.json; never a
                                reference solution)
  --scoring-user USER           the user the scorer runs as; created when missing (default ${DEFAULT_SCORING_USER})
  --solution-dir DIR            the participant's solution folder on the VM (default ~USER/solution)
  --participant-key FILE        the participant's public key (.pub): added to their authorized_keys
  --create-participant          create the participant's login when it is missing (needs --participant-key)
  --force                       replace the environment even though a session has started with it

A METR Task Standard family instead of --environment (see "Running METR task families" in the README)
  --metr-family DIR             the family folder (<family>.py, maybe manifest.yaml, assets/, requirements.txt)
  --task NAME                   the task of the family to run
  --secrets FILE                NAME=VALUE lines for the family's required_environment_variables (stored
                                root-only on the VM, passed to the family's calls only)
  --direction higher|lower      which way is better (default: from the family's aggregate_scores)
  --aggregation best|last       which score counts (default: from the family's aggregate_scores)
  --reference-score N           the reference solution's score (the starting score is measured on the VM)
  --starting-score N            end-scoring families (score(t, submission)): the score a trivial answer gets
  --answer-pattern REGEX        end-scoring families: a regular expression the whole answer must match; an
                                answer that does not is refused before it is sent
  --answer-format TEXT          end-scoring families: the answer's form shown in the answer box (default: the
                                instructions' "Answer format:" line)
  --family-python PY            the family's Python 3.11+ on the VM (default: the newest python3.x there)

The session profile (written on this machine)
  --out FILE                    where to write it (default ./USER@HOST.rebench-profile.json)
  --name TEXT                   its name in the participant's host picker
  --participant-identity-file PATH  the key path on the participant's machine, written to the profile

Output
  --json                        print the result as JSON on stdout (progress goes to stderr)
  -h, --help                    this help

Exit status: 0 prepared, 1 failed (the message says what to do), 2 bad arguments.`;

export interface ParsedPrepareArgs {
  options: Omit<PrepareOptions, 'onProgress' | 'signal'>;
  json: boolean;
}

export type PrepareArgsResult = { kind: 'help' } | { kind: 'error'; message: string } | { kind: 'ok'; value: ParsedPrepareArgs };

const VALUE_OPTIONS = new Set([
  '--host',
  '--port',
  '--admin',
  '--identity',
  '--password-env',
  '--key-passphrase-env',
  '--host-key-fingerprint',
  '--known-hosts',
  '--jump',
  '--jump-admin',
  '--jump-host-key-fingerprint',
  '--participant',
  '--environment',
  '--scoring-user',
  '--solution-dir',
  '--participant-key',
  '--out',
  '--name',
  '--participant-identity-file',
  '--metr-family',
  '--task',
  '--secrets',
  '--direction',
  '--aggregation',
  '--reference-score',
  '--starting-score',
  '--answer-pattern',
  '--answer-format',
  '--family-python',
]);
const FLAGS = new Set(['--no-agent', '--accept-new-host-key', '--create-participant', '--force', '--json']);
const REPEATABLE = new Set(['--identity', '--known-hosts']);

function hostPort(text: string, what: string): { host: string; port?: number } | string {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([^:\s]+)(?::(\d+))?$/.exec(text);
  const m = bracketed ?? plain;
  if (!m || !m[1]) return `${what} "${text}" is not HOST or HOST:PORT.`;
  if (m[2] === undefined) return { host: m[1] };
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `the port in ${what} "${text}" must be 1 to 65535.`;
  return { host: m[1], port };
}

/**
 * The options of `prepare` as node:util's parseArgs reads them (`--name value`, `--name=value`, `-i value`),
 * with this tool's own messages: a string says what is wrong.
 */
function readPrepareOptions(args: readonly string[]): { values: Map<string, string[]>; flags: Set<string> } | string {
  const options: Record<string, { type: 'string' | 'boolean'; multiple: true; short?: string }> = {};
  for (const name of VALUE_OPTIONS) options[name.slice(2)] = { type: 'string', multiple: true };
  for (const name of FLAGS) options[name.slice(2)] = { type: 'boolean', multiple: true };
  options['identity']!.short = 'i';
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  for (const token of tokens) {
    const arg = args[token.index] as string;
    if (token.kind === 'option-terminator') return `unknown option "${arg}".`;
    if (token.kind === 'positional') return `unexpected argument "${arg}" (every value follows its option, e.g. --host ${arg}).`;
    // An option is the whole argument or --NAME=VALUE: "-ivalue" and "-i=value" are not options of this tool.
    const inline = arg.startsWith('--') && arg.startsWith(`${token.rawName}=`);
    const name = `--${token.name}`;
    if (!(arg === token.rawName || inline) || !(VALUE_OPTIONS.has(name) || FLAGS.has(name))) return `unknown option "${arg}".`;
    if (FLAGS.has(name)) {
      if (inline) return `${name} takes no value.`;
      flags.add(name);
      continue;
    }
    const value = token.value;
    if (value === undefined || (!token.inlineValue && value.startsWith('--') && value.length > 2)) return `${name} needs a value.`;
    if (value === '') return `${name} needs a non-empty value.`;
    const list = values.get(name) ?? [];
    if (list.length && !REPEATABLE.has(name)) return `${name} is given twice; give it once.`;
    list.push(value);
    values.set(name, list);
  }
  return { values, flags };
}

/** Parses the arguments of `prepare`; `env` supplies the variables named by --password-env and --key-passphrase-env. */
export function parsePrepareArgs(args: readonly string[], env: NodeJS.ProcessEnv = process.env, home = os.homedir()): PrepareArgsResult {
  // Help wins wherever it is, even after a mistake: it is what the mistaken ask for.
  if (args.includes('--help') || args.includes('-h')) return { kind: 'help' };
  const read = readPrepareOptions(args);
  if (typeof read === 'string') return { kind: 'error', message: read };
  const { values, flags } = read;
  const one = (name: string) => values.get(name)?.[0];

  const metrFamily = values.has('--metr-family');
  if (metrFamily && values.has('--environment'))
    return { kind: 'error', message: '--metr-family and --environment are two ways to name what to install: give one.' };
  const metrOnly = [
    '--task',
    '--secrets',
    '--direction',
    '--aggregation',
    '--reference-score',
    '--starting-score',
    '--answer-pattern',
    '--answer-format',
    '--family-python',
  ].filter((n) => values.has(n));
  if (!metrFamily && metrOnly.length)
    return { kind: 'error', message: `${metrOnly.join(', ')} ${metrOnly.length === 1 ? 'is' : 'are'} for a METR task family: give --metr-family DIR too.` };
  const missing = [
    ['--host', "the VM's address"],
    ['--admin', "the administrator's login on the VM"],
    ['--participant', "the participant's login user"],
    ...(metrFamily ? [['--task', 'the task of the METR family to run']] : [['--environment', 'the environment folder to install']]),
  ].filter(([n]) => !values.has(n as string));
  if (missing.length) return { kind: 'error', message: missing.map(([n, what]) => `${n} is required (${what}).`).join(' ') };

  const host = one('--host') as string;
  if (!/^[A-Za-z0-9._:\-[\]%]+$/.test(host)) return { kind: 'error', message: `--host "${host}" is not a host name or IP address.` };
  let port = 22;
  const portText = one('--port');
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) return { kind: 'error', message: `--port must be a number from 1 to 65535, not "${portText}".` };
  }
  const participant = one('--participant') as string;
  if (!VM_USER_NAME.test(participant))
    return {
      kind: 'error',
      message: `--participant "${participant}" is not a valid user name (lowercase letters, digits, "_" and "-", starting with a letter or "_").`,
    };
  const scoringUser = one('--scoring-user');
  if (scoringUser !== undefined && !VM_USER_NAME.test(scoringUser))
    return { kind: 'error', message: `--scoring-user "${scoringUser}" is not a valid user name.` };
  if (scoringUser !== undefined && scoringUser === participant)
    return { kind: 'error', message: "--scoring-user must differ from --participant, or the participant could write the scorer's result." };
  const solutionDir = one('--solution-dir');
  if (solutionDir !== undefined && !solutionDir.startsWith('/'))
    return { kind: 'error', message: `--solution-dir must be an absolute path on the VM, not "${solutionDir}".` };

  const pin = (name: string): string | undefined | { error: string } => {
    const text = one(name);
    if (text === undefined) return undefined;
    const parsed = parsePinnedFingerprint(text);
    return parsed.ok ? parsed.fingerprint : { error: `${name}: ${parsed.error}` };
  };
  const hostPin = pin('--host-key-fingerprint');
  if (typeof hostPin === 'object') return { kind: 'error', message: hostPin.error };
  const jumpPin = pin('--jump-host-key-fingerprint');
  if (typeof jumpPin === 'object') return { kind: 'error', message: jumpPin.error };

  const secret = (name: string): string | undefined | { error: string } => {
    const variable = one(name);
    if (variable === undefined) return undefined;
    const v = env[variable];
    if (v === undefined || v === '')
      return { error: `${name} ${variable}: the environment variable ${variable} is not set (export it before running prepare).` };
    return v;
  };
  const password = secret('--password-env');
  if (typeof password === 'object') return { kind: 'error', message: password.error };
  const keyPassphrase = secret('--key-passphrase-env');
  if (typeof keyPassphrase === 'object') return { kind: 'error', message: keyPassphrase.error };

  let jump: PrepareOptions['jump'];
  const jumpText = one('--jump');
  if (jumpText !== undefined) {
    const at = jumpText.lastIndexOf('@');
    const user = at > 0 ? jumpText.slice(0, at) : participant;
    const hp = hostPort(at > 0 ? jumpText.slice(at + 1) : jumpText, '--jump');
    if (typeof hp === 'string') return { kind: 'error', message: hp };
    if (!/^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(user)) return { kind: 'error', message: `the user in --jump "${jumpText}" is not a valid user name.` };
    jump = { host: hp.host, port: hp.port ?? 22, participantUser: user, adminUser: one('--jump-admin'), hostKeyFingerprint: jumpPin };
  } else if (values.has('--jump-admin') || jumpPin !== undefined) {
    return { kind: 'error', message: '--jump-admin and --jump-host-key-fingerprint need --jump.' };
  }

  if (flags.has('--create-participant') && !values.has('--participant-key')) {
    return { kind: 'error', message: "--create-participant needs --participant-key FILE (the participant's public key), or they could not log in." };
  }
  let participantPublicKey: string | undefined;
  const keyFile = one('--participant-key');
  if (keyFile !== undefined) {
    try {
      participantPublicKey = fs.readFileSync(keyFile, 'utf8').trim();
    } catch (e) {
      return { kind: 'error', message: `--participant-key ${keyFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}).` };
    }
    if (!/^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+( .*)?$/.test(participantPublicKey) || participantPublicKey.includes('\n')) {
      return {
        kind: 'error',
        message: `--participant-key ${keyFile} is not one OpenSSH public key line ("ssh-ed25519 AAAA... comment"); pass the participant's .pub file, not a private key.`,
      };
    }
  }

  const identityFiles = values.get('--identity') ?? ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(home, '.ssh', f)).filter((f) => fs.existsSync(f));
  for (const f of values.get('--identity') ?? []) {
    if (!fs.existsSync(f)) return { kind: 'error', message: `-i ${f}: no such key file.` };
  }
  const knownHostsFiles = values.get('--known-hosts') ?? [path.join(home, '.ssh', 'known_hosts')];
  const environmentDir = one('--environment') ?? '';
  let metr: PrepareOptions['metr'];
  if (metrFamily) {
    const direction = one('--direction');
    if (direction !== undefined && direction !== 'higher' && direction !== 'lower')
      return { kind: 'error', message: `--direction must be higher or lower, not "${direction}".` };
    const aggregation = one('--aggregation');
    if (aggregation !== undefined && aggregation !== 'best' && aggregation !== 'last')
      return { kind: 'error', message: `--aggregation must be best or last, not "${aggregation}".` };
    const refText = one('--reference-score');
    const referenceScore = refText === undefined ? undefined : Number(refText);
    if (referenceScore !== undefined && (!Number.isFinite(referenceScore) || refText?.trim() === ''))
      return { kind: 'error', message: `--reference-score must be a finite number, not "${refText}".` };
    const startText = one('--starting-score');
    const startingScore = startText === undefined ? undefined : Number(startText);
    if (startingScore !== undefined && (!Number.isFinite(startingScore) || startText?.trim() === ''))
      return { kind: 'error', message: `--starting-score must be a finite number, not "${startText}".` };
    const answerPattern = one('--answer-pattern');
    const answerFormat = one('--answer-format');
    const submit = submitSettingsSchema.safeParse({ format: answerFormat ?? 'the answer', pattern: answerPattern ?? null });
    if (!submit.success) return { kind: 'error', message: `--answer-pattern or --answer-format: ${formatZodError(submit.error)}` };
    const secretsFile = one('--secrets');
    if (secretsFile !== undefined && !fs.existsSync(secretsFile)) return { kind: 'error', message: `--secrets ${secretsFile}: no such file.` };
    metr = {
      familyDir: one('--metr-family') as string,
      task: one('--task') as string,
      secretsFile,
      familyPython: one('--family-python'),
      direction: direction as 'higher' | 'lower' | undefined,
      aggregation: aggregation as 'best' | 'last' | undefined,
      referenceScore,
      startingScore,
      answerPattern,
      answerFormat,
    };
  }
  const out = one('--out') ?? `${participant}@${host.replace(/[^A-Za-z0-9._-]/g, '_')}${port === 22 ? '' : `_${port}`}.rebench-profile.json`;
  const name = one('--name');
  if (name !== undefined && name.length > 120) return { kind: 'error', message: '--name is longer than 120 characters.' };

  return {
    kind: 'ok',
    value: {
      json: flags.has('--json'),
      options: {
        admin: {
          host,
          port,
          user: one('--admin') as string,
          identityFiles,
          agent: flags.has('--no-agent') ? false : undefined,
          password,
          keyPassphrase,
          hostKeyFingerprint: hostPin,
          knownHostsFiles,
          acceptNewHostKey: flags.has('--accept-new-host-key'),
        },
        participant,
        environmentDir,
        metr,
        jump,
        profilePath: out,
        profileName: name,
        participantIdentityFile: one('--participant-identity-file'),
        scoringUser,
        solutionDir,
        createParticipant: flags.has('--create-participant'),
        participantPublicKey,
        force: flags.has('--force'),
      },
    },
  };
}

/** Prints the result for a person. */
export function formatPrepareResult(r: PrepareResult): string[] {
  const lines: string[] = [];
  lines.push(
    r.changed.length
      ? `Prepared: ${r.changed.length} change${r.changed.length === 1 ? '' : 's'}, ${r.unchanged.length} already in place.`
      : `Nothing to change: all ${r.unchanged.length} items were already in place.`,
  );
  if (r.changed.length) lines.push('Changed:', ...r.changed.map((c) => `  - ${c}`));
  if (r.unchanged.length) lines.push('Already in place:', ...r.unchanged.map((c) => `  - ${c}`));
  if (r.startingScore) {
    const s = r.startingScore;
    lines.push(
      `Starting score on this VM: ${fmt(s.measured)} (manifest ${fmt(s.manifest)}, reference ${fmt(s.reference)}, ${s.direction} is better; normalised ${fmt(Number(s.normalized.toFixed(3)))})${s.measuredNow ? '' : ', measured earlier'}`,
    );
  }
  for (const w of r.warnings) lines.push(`Warning: ${w}`);
  lines.push(
    `Profile: ${r.profile.path} (${r.profile.profile.user}@${r.profile.profile.host}:${r.profile.profile.port}, host key ${r.hostKeyFingerprint}${r.jumpHostKeyFingerprint ? `, jump host key ${r.jumpHostKeyFingerprint}` : ''})`,
  );
  lines.push('Give the participant this file: in VS Code, "RE-Bench: Import Session Profile…".');
  return lines;
}

export async function prepareCommand(args: string[], io: { out: (line: string) => void; err: (line: string) => void }): Promise<number> {
  const parsed = parsePrepareArgs(args);
  if (parsed.kind === 'help') {
    for (const line of PREPARE_USAGE.split('\n')) io.out(line);
    return 0;
  }
  if (parsed.kind === 'error') {
    io.err(`prepare: error: ${parsed.message}`);
    io.err('Run "rebench-organiser prepare --help" for the options.');
    return 2;
  }
  const { options, json } = parsed.value;
  const say = json ? io.err : io.out;
  const controller = new AbortController();
  const stop = () => {
    if (!controller.signal.aborted) say('Stopping after the current step (press Ctrl-C again to quit at once)…');
    else process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', stop);
  try {
    const result = await prepareVm({
      ...options,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 'scorer-output') {
          for (const line of p.message.replace(/\n$/, '').split('\n')) say(`  | ${line}`);
        } else {
          say(`[${p.step}] ${p.message}`);
        }
      },
    });
    if (json) io.out(JSON.stringify(result, null, 2));
    else for (const line of formatPrepareResult(result)) io.out(line);
    return 0;
  } catch (e) {
    const message = e instanceof PrepareError ? e.message : `unexpected failure: ${errorMessage(e)}`;
    const [first, ...rest] = message.split('\n');
    io.err(`prepare: error: ${first}`);
    for (const line of rest) io.err(line);
    return 1;
  } finally {
    process.off('SIGINT', stop);
  }
}
