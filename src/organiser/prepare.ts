// Prepares one VM for a protected session, over SSH as an administrator (root, or a user with passwordless
// sudo): the runner, the environment, the scoring user, the participant's solution folder and their one sudo
// rule (all by environments/provision-protected.sh), the starting score measured on this very VM, and the
// participant's session profile with the VM's host key pinned.
//
// Idempotent: the VM is inspected first (environments/prepare-vm.py, run as root from stdin), and only what
// is not in place is done. A run cut short anywhere leaves nothing half-installed that the next run would
// trust: uploads go to a staging folder that is wiped first, provisioning installs by renaming, and an
// interrupted measurement is finished (its scoring job awaited) rather than started twice.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorMessage } from '../core/errors';
import type { SessionProfile } from '../core/profile';
import { parseProfile } from '../core/profile';
import { readKnownHostsEntries, type UnknownHostInfo } from '../core/ssh/hostTrust';
import { isSshError, silentLogger, type SshLogger } from '../core/ssh/sshError';
import type { SshHop } from '../core/ssh/connection';
import { SshTarget } from '../core/ssh/sshTarget';
import { shellQuote, type ExecOptions, type ExecResult } from '../core/target';
import type { Aggregation, Direction } from './metrFamily';
import { familyFiles, metrEnvironmentId, MetrPrepareError, type MetrPrepareResult, prepareMetrFamily, writeMetrEnvironment } from './metrPrepare';
import { defaultToolFiles, type EnvironmentBundle, readEnvironmentBundle, runnerBodySha256, type ToolFiles } from './environmentBundle';
import {
  assess,
  buildProfile,
  currentStartingScore,
  decideHostKey,
  DEFAULT_SCORING_USER,
  explainSudoFailure,
  type Expected,
  fmt,
  hostKeyId,
  type HostKeyPolicy,
  type Inspection,
  inspectionSchema,
  measureEventSchema,
  participantReplySchema,
  PrepareError,
  type PresentedKey,
  PROTECTED_HOME,
  SOLUTION_USER,
  STARTING_SCORE_FILE,
  type StartingScore,
  startingScoreOf,
  startingScoreWarning,
  type StartingScoreRecord,
  VM_USER_NAME,
  vmErrorSchema,
} from './prepareCore';

export interface AdminConnection {
  /** The VM's address; the participant's profile names the same address. */
  host: string;
  port?: number;
  /** root, or a user with passwordless sudo. */
  user: string;
  identityFiles?: readonly string[];
  /** An ssh-agent socket; default SSH_AUTH_SOCK; false for none. */
  agent?: string | false;
  /** Answered to keyboard-interactive password prompts. */
  password?: string;
  /** For an encrypted identity file. */
  keyPassphrase?: string;
  /** "SHA256:..." of the VM's host key, when the organiser has it. */
  hostKeyFingerprint?: string;
  /** known_hosts files to check host keys against (read only). */
  knownHostsFiles?: readonly string[];
  /** Trust a host key that nothing else vouches for (first contact with a fresh VM). */
  acceptNewHostKey?: boolean;
  readyTimeoutMs?: number;
}

export interface JumpHost {
  host: string;
  port?: number;
  /** The participant's login on the jump host, written to the profile. */
  participantUser: string;
  /** The administrator's login on the jump host; default the admin user. */
  adminUser?: string;
  hostKeyFingerprint?: string;
}

export type PrepareStep =
  'check' | 'connect' | 'inspect' | 'participant' | 'upload' | 'provision' | 'verify' | 'starting-score' | 'scorer-output' | 'profile' | 'cleanup' | 'metr';

export interface PrepareProgress {
  step: PrepareStep;
  message: string;
}

export interface PrepareOptions {
  admin: AdminConnection;
  /** The participant's login user on the VM. */
  participant: string;
  /** A local environment folder (manifest.json, instructions, scorer, starting solution, optional protected/). */
  environmentDir: string;
  /**
   * A METR Task Standard family instead of environmentDir: set up on the VM as METR's image is
   * (environments/metr/machine.py), then installed as an environment that the runner scores through it.
   */
  metr?: MetrPrepareFamily;
  jump?: JumpHost;
  /** Where to write the participant's session profile (on this machine). */
  profilePath: string;
  profileName?: string;
  /** Written to the profile as identity_file: the key path on the participant's machine. */
  participantIdentityFile?: string;
  scoringUser?: string;
  /** On the VM; default ~participant/solution. */
  solutionDir?: string;
  /** Create the participant's login when it is missing. */
  createParticipant?: boolean;
  /** An OpenSSH public key line: added to the participant's authorized_keys when missing there. */
  participantPublicKey?: string;
  /** Replace the environment although a session has started with it. */
  force?: boolean;
  tools?: Partial<ToolFiles>;
  onProgress?: (p: PrepareProgress) => void;
  /** Stops between steps (a step under way finishes first); running prepare again completes the work. */
  signal?: AbortSignal;
  /** Asked when a host key is neither pinned nor known and acceptNewHostKey is off; true trusts it. */
  confirmNewHostKey?: (key: PresentedKey) => Promise<boolean>;
  logger?: SshLogger;
}

export interface MetrPrepareFamily {
  familyDir: string;
  task: string;
  secretsFile?: string;
  familyPython?: string;
  direction?: Direction;
  aggregation?: Aggregation;
  referenceScore?: number;
  /** End-scoring families: the score a trivial answer gets, the answer's pattern and its form as shown. */
  startingScore?: number;
  answerPattern?: string;
  answerFormat?: string;
  /** The runner's time limit for one scoring run (default 1200 s). */
  scoringTimeoutS?: number;
  /** environments/metr here (default: beside the runner). */
  metrDir?: string;
  /** For tests: machine.py's state folder and the family's folder on the VM. */
  stateDir?: string;
  familyRoot?: string;
}

export interface PrepareResult {
  environmentId: string;
  /** What this run changed, one line each (empty on a run that found everything in place). */
  changed: string[];
  /** What was already in place. */
  unchanged: string[];
  warnings: string[];
  /** Undefined only when a session had already started before any starting score was recorded. */
  startingScore?: StartingScore;
  hostKeyFingerprint: string;
  jumpHostKeyFingerprint?: string;
  profile: { path: string; written: boolean; profile: SessionProfile };
}

const STAGE_NAME = '.rebench-prepare';

interface Remote {
  target: SshTarget;
  /** "" as root, "sudo -n " otherwise. */
  root: string;
  python: string;
  home: string;
  vmScript: string;
}

/** Prepares one VM; throws a PrepareError that says what is wrong and what to do. */
export async function prepareVm(o: PrepareOptions): Promise<PrepareResult> {
  const progress = (step: PrepareStep, message: string) => o.onProgress?.({ step, message });
  const changed: string[] = [];
  const unchanged: string[] = [];
  const warnings: string[] = [];
  const checkpoint = (after: string) => {
    if (o.signal?.aborted) {
      throw new PrepareError('cancelled', `Cancelled after ${after}. Run prepare again to finish: it is safe to repeat and picks up where this run stopped.`);
    }
  };

  // --- on this machine, before connecting -------------------------------------------------------------
  // A METR family's environment folder is made after the family is set up on the VM (it records the
  // starting score measured there): it is checked then.
  let local = o.metr ? undefined : checkLocalReported(o, progress);
  const previous = readPreviousProfile(o.profilePath);

  // --- connect, trusting only host keys the organiser vouches for -------------------------------------
  const port = o.admin.port ?? 22;
  const jumpPort = o.jump?.port ?? 22;
  const pins: HostKeyPolicy['pins'] = new Map();
  if (previous) {
    if (previous.host === o.admin.host && previous.port === port) {
      pins.set(hostKeyId(o.admin.host, port), { fingerprint: previous.host_key_fingerprint, source: `the existing profile ${o.profilePath}` });
    }
    if (o.jump && previous.jump && previous.jump.host === o.jump.host && previous.jump.port === jumpPort) {
      pins.set(hostKeyId(o.jump.host, jumpPort), { fingerprint: previous.jump.host_key_fingerprint, source: `the existing profile ${o.profilePath}` });
    }
  }
  if (o.jump?.hostKeyFingerprint) pins.set(hostKeyId(o.jump.host, jumpPort), { fingerprint: o.jump.hostKeyFingerprint, source: '--jump-host-key-fingerprint' });
  if (o.admin.hostKeyFingerprint) pins.set(hostKeyId(o.admin.host, port), { fingerprint: o.admin.hostKeyFingerprint, source: '--host-key-fingerprint' });
  const knownHostsFiles = [...(o.admin.knownHostsFiles ?? [])];
  const policy: HostKeyPolicy = {
    pins,
    knownHosts: await readKnownHostsEntries(knownHostsFiles, silentLogger),
    knownHostsFiles,
    acceptNew: o.admin.acceptNewHostKey === true,
  };
  const verified = new Map<string, string>();
  let refusal: string | undefined;
  const confirmUnknownHost = async (info: UnknownHostInfo): Promise<boolean> => {
    const key: PresentedKey = { host: info.host, port: info.port, keyType: info.keyType, fingerprint: info.fingerprint };
    const decision = decideHostKey(key, policy);
    let ok = decision.ok;
    const asked = !decision.ok && decision.ask && o.confirmNewHostKey !== undefined;
    if (asked) ok = await (o.confirmNewHostKey as NonNullable<PrepareOptions['confirmNewHostKey']>)(key);
    if (ok) {
      verified.set(hostKeyId(info.host, info.port), info.fingerprint);
      progress('connect', decision.ok ? decision.note : `host key of ${info.host}:${info.port} ${info.fingerprint} accepted by you`);
    } else if (asked) {
      refusal = `You did not trust the host key of ${info.host}:${info.port} (${info.keyType} ${info.fingerprint}); nothing was sent. Compare it with what ssh-keygen -lf prints for the VM's host key on its console, then prepare again.`;
    } else {
      refusal = decision.ok ? undefined : decision.message;
    }
    return ok;
  };

  const jumpHop: SshHop | undefined = o.jump
    ? { host: o.jump.host, port: jumpPort, user: o.jump.adminUser ?? o.admin.user, identityFiles: o.admin.identityFiles }
    : undefined;
  const label = `${o.admin.user}@${o.admin.host}:${port}`;
  let metrTmp: string | undefined;
  const target = new SshTarget({
    host: o.admin.host,
    port,
    user: o.admin.user,
    identityFiles: o.admin.identityFiles ?? [],
    agent: o.admin.agent,
    jump: jumpHop,
    knownHostsFiles: [], // every key goes through confirmUnknownHost: the organiser's rules above decide
    confirmUnknownHost,
    readyTimeoutMs: o.admin.readyTimeoutMs,
    reconnect: { maxAttempts: 1 },
    logger: o.logger,
    askPassphrase: o.admin.keyPassphrase === undefined ? undefined : async (_keyPath, attempt) => (attempt === 1 ? o.admin.keyPassphrase : undefined),
    keyboardInteractive:
      o.admin.password === undefined
        ? undefined
        : async (_name, _instructions, prompts) =>
            prompts.every((p) => /pass(word|code|phrase)/i.test(p.prompt)) ? prompts.map(() => o.admin.password as string) : undefined,
  });

  try {
    progress('connect', `Connecting to ${label}${jumpHop ? ` via ${jumpHop.user}@${jumpHop.host}:${jumpPort}` : ''}`);
    try {
      await target.connect();
    } catch (e) {
      throw connectError(e, refusal, o, label);
    }
    const vmFingerprint = verified.get(hostKeyId(o.admin.host, port));
    const jumpFingerprint = o.jump ? verified.get(hostKeyId(o.jump.host, jumpPort)) : undefined;
    if (!vmFingerprint || (o.jump && !jumpFingerprint)) {
      throw new PrepareError(
        'host-key',
        `The host key of ${label} was not seen while connecting, so it cannot be pinned in the profile. Run prepare again; if it keeps happening, report it with the output of this run.`,
      );
    }
    checkpoint('connecting');

    if (o.metr) {
      const m = await prepareMetrOnVm(target, o, o.metr, progress);
      metrTmp = m.tmp;
      o = { ...o, environmentDir: m.environmentDir, solutionDir: o.solutionDir ?? '/home/agent' };
      local = checkLocalReported(o, progress);
    }
    const { bundle, tools } = local as LocalCheck;
    const envId = bundle.manifest.id;
    const remote = await openRemote(target, o.admin.user, label, (local as LocalCheck).vmScript);
    progress('inspect', `Logged in as ${o.admin.user}${remote.root ? ' (using sudo)' : ' (root)'}; inspecting the VM`);
    const expected: Expected = {
      environmentId: envId,
      environmentSha256: bundle.sha256,
      runnerBodySha256: runnerBodySha256(fs.readFileSync(tools.runnerPath)),
      participant: o.participant,
      scoringUser: o.scoringUser ?? DEFAULT_SCORING_USER,
      solutionDir: o.solutionDir,
      createParticipant: o.createParticipant === true,
      force: o.force === true,
    };
    let inspection = await inspect(remote, expected);
    let assessment = assess(inspection, expected);
    if (assessment.blockers.length) throw blocked(assessment.blockers, label);

    // --- the participant's login --------------------------------------------------------------------
    if (assessment.createParticipant || o.participantPublicKey) {
      checkpoint('inspecting the VM');
      const reply = await vmCommand(
        remote,
        'add-participant',
        { user: o.participant, public_key: o.participantPublicKey ?? null },
        'participant',
        'adding the participant',
      );
      const parsed = participantReplySchema.safeParse(reply);
      if (!parsed.success) throw new PrepareError('vm', `prepare-vm.py add-participant gave an unexpected reply: ${JSON.stringify(reply).slice(0, 300)}`);
      if (parsed.data.created) changed.push(`created the participant's login ${o.participant} (home ${parsed.data.home}, no password)`);
      if (parsed.data.added_key) changed.push(`added the participant's public key to ${parsed.data.home}/.ssh/authorized_keys`);
      if (o.participantPublicKey && !parsed.data.added_key) unchanged.push(`the participant's public key is in ${parsed.data.home}/.ssh/authorized_keys`);
      for (const line of changed) progress('participant', line);
      inspection = await inspect(remote, expected);
      assessment = assess(inspection, expected);
      if (assessment.blockers.length) throw blocked(assessment.blockers, label);
    }

    // --- provisioning, only when something is not in place ------------------------------------------
    const stage = `${remote.home}/${STAGE_NAME}`;
    if (assessment.missing.length) {
      for (const m of assessment.missing) progress('provision', `To do: ${m}`);
      checkpoint('inspecting the VM');
      await upload(remote, stage, bundle, tools, progress);
      checkpoint(`uploading to ${stage}`);
      try {
        await provision(remote, stage, bundle, expected, progress);
      } catch (e) {
        // The staging folder holds protected/: it does not stay behind after a failure that needs a person.
        if (e instanceof PrepareError && e.code === 'provision') await remove(remote, stage).catch(() => undefined);
        throw e;
      }
      changed.push(...assessment.fixes);
      await remove(remote, stage);
      inspection = await inspect(remote, expected);
      const after = assess(inspection, expected);
      if (after.blockers.length || after.missing.length) {
        throw new PrepareError(
          'provision',
          `provision-protected.sh finished, but on ${label} these are still not as they should be: ${[...after.blockers, ...after.missing].join('; ')}. Check the VM and run prepare again.`,
        );
      }
      progress('verify', `Checked: ${after.inPlace.length} of ${after.inPlace.length} items in place`);
    } else {
      unchanged.push(...assessment.inPlace);
      const leftover = await run(remote, `test -e ${shellQuote(stage)}`, 'looking for a staging folder');
      if (leftover.code === 0) {
        await remove(remote, stage);
        changed.push(`removed the staging folder ${stage} that an interrupted run left`);
        progress('cleanup', `Removed ${stage}, left by an interrupted run`);
      }
      progress('verify', `Everything provisioning makes is in place (${assessment.inPlace.length} items)`);
    }
    checkpoint('provisioning');

    // --- the starting score, measured here -----------------------------------------------------------
    let startingScore: StartingScore | undefined;
    const current = currentStartingScore(inspection, bundle.sha256);
    if (current) {
      startingScore = startingScoreOf(current, false);
      unchanged.push(
        `the starting score ${fmt(startingScore.measured)} measured on this VM at ${current.measured_at ?? '?'} is recorded in ${STARTING_SCORE_FILE}`,
      );
      progress('starting-score', `Starting score already measured on this VM: ${fmt(startingScore.measured)} (manifest ${fmt(startingScore.manifest)})`);
    } else if (bundle.manifest.scoring.submit) {
      progress(
        'starting-score',
        `Not measured: the environment scores one submitted answer at the end; the starting score is the organiser's (${fmt(bundle.manifest.scoring.starting_score)})`,
      );
    } else if (inspection.session) {
      warnings.push(
        `The starting score was not measured: a session started on this VM at ${inspection.session.started_at ?? '?'}, and a measurement would compete with it. Measure it on another VM prepared the same way.`,
      );
    } else {
      const record = await measure(remote, envId, bundle.sha256, expected.scoringUser, progress);
      if (record.score === null) {
        throw new PrepareError(
          'starting-score',
          `The starting solution got no score on ${label}: ${record.message || 'the scorer gave no message'}${record.timed_out ? ' (the scorer timed out)' : ''}. ` +
            'The scorer runs as the scoring user on this VM: check what it needs there (GPUs, packages, data), then run prepare again. Everything else is in place.',
        );
      }
      startingScore = startingScoreOf(record, true);
      changed.push(
        `measured the starting score on this VM: ${fmt(startingScore.measured)} (manifest ${fmt(startingScore.manifest)}), recorded in ${STARTING_SCORE_FILE}`,
      );
    }
    if (startingScore) {
      const warning = startingScoreWarning(startingScore);
      if (warning) warnings.push(warning);
    }
    checkpoint('measuring the starting score');

    // --- the participant's profile -------------------------------------------------------------------
    const { profile, text } = buildProfile({
      name: o.profileName,
      host: o.admin.host,
      port,
      participant: o.participant,
      hostKeyFingerprint: vmFingerprint,
      environmentId: envId,
      environmentTitle: bundle.manifest.title,
      jump: o.jump && jumpFingerprint ? { host: o.jump.host, port: jumpPort, user: o.jump.participantUser, hostKeyFingerprint: jumpFingerprint } : undefined,
      identityFile: o.participantIdentityFile,
    });
    const written = writeProfile(o.profilePath, text);
    (written ? changed : unchanged).push(
      `${written ? 'wrote' : 'the'} session profile ${o.profilePath}${written ? '' : ' is up to date'} (host key ${vmFingerprint})`,
    );
    progress('profile', `${written ? 'Wrote' : 'Unchanged:'} ${o.profilePath}`);

    return {
      environmentId: envId,
      changed,
      unchanged,
      warnings,
      startingScore,
      hostKeyFingerprint: vmFingerprint,
      jumpHostKeyFingerprint: jumpFingerprint,
      profile: { path: path.resolve(o.profilePath), written, profile },
    };
  } catch (e) {
    throw asPrepareError(e, label);
  } finally {
    target.dispose();
    if (metrTmp) fs.rmSync(metrTmp, { recursive: true, force: true });
  }
}

type LocalCheck = ReturnType<typeof checkLocal>;

function checkLocalReported(o: PrepareOptions, progress: (step: PrepareStep, message: string) => void): LocalCheck {
  progress('check', `Checking the environment folder ${o.environmentDir}`);
  const local = checkLocal(o);
  const { bundle } = local;
  progress(
    'check',
    `Environment ${bundle.manifest.id} ${bundle.manifest.version}: ${bundle.entries.filter((e) => e.kind === 'file').length} files, ${kb(bundle.bytes)}, sha256 ${bundle.sha256.slice(0, 12)}`,
  );
  return local;
}

/** Sets a METR family up on the VM and writes our environment folder for it (in a temporary folder here). */
async function prepareMetrOnVm(
  target: SshTarget,
  o: PrepareOptions,
  m: MetrPrepareFamily,
  progress: (step: PrepareStep, message: string) => void,
): Promise<{ tmp: string; environmentDir: string }> {
  if (o.participant !== 'agent') {
    throw new PrepareError(
      'usage',
      `METR task families are run by the participant's login "agent" (their scorers live in /home/agent), not "${o.participant}": use --participant agent.`,
    );
  }
  const timeoutS = m.scoringTimeoutS ?? 1200;
  // A started session for another environment blocks the switch later; it must block before the family's
  // set-up changes anything (start(t) of another family would already have run).
  let envId: string;
  try {
    envId = metrEnvironmentId(familyFiles(m.familyDir).family, m.task);
  } catch (e) {
    throw new PrepareError('metr', (e as Error).message);
  }
  const sudo = (await target.exec('id -u')).stdout.trim() === '0' ? '' : 'sudo -n ';
  const session = await target.exec(`${sudo}cat ${PROTECTED_HOME}/state/session.json`);
  if (session.code === 0) {
    let started: { environment?: unknown; started_at?: unknown } = {};
    try {
      started = JSON.parse(session.stdout) as typeof started;
    } catch {
      // unreadable: the inspection after the set-up says what is wrong with it
    }
    if (started.started_at && started.environment !== envId) {
      throw new PrepareError(
        'metr',
        `Nothing was changed: a session for "${String(started.environment)}" has started on this VM (${PROTECTED_HOME}/state/session.json, started ${String(started.started_at)}); it cannot switch to "${envId}". Archive and remove ${PROTECTED_HOME}/state on the VM first if that session is over.`,
      );
    }
  }
  progress('metr', `Setting the VM up for the METR task family ${m.familyDir}, task ${m.task}`);
  let result: MetrPrepareResult;
  try {
    result = await prepareMetrFamily({
      target,
      familyDir: m.familyDir,
      task: m.task,
      secretsFile: m.secretsFile,
      familyPython: m.familyPython,
      direction: m.direction,
      aggregation: m.aggregation,
      referenceScore: m.referenceScore,
      metrDir: m.metrDir ?? path.join(path.dirname(defaultToolFiles().provisionScriptPath), 'metr'),
      stateDir: m.stateDir,
      familyRoot: m.familyRoot,
      force: o.force === true,
      scoring: { user: o.scoringUser ?? DEFAULT_SCORING_USER, timeoutS },
      onStep: (s) => progress('metr', `${s.status === 'changed' ? 'Done' : s.status === 'in place' ? 'In place' : 'Skipped'}: ${s.message}`),
      onOutput: (text) => progress('scorer-output', text),
    });
  } catch (e) {
    if (e instanceof MetrPrepareError) throw new PrepareError('metr', e.message);
    throw e;
  }
  for (const line of result.scoring.explanation) progress('metr', `Scoring: ${line}`);
  for (const w of result.scoring.warnings) progress('metr', `Warning: ${w}`);
  progress(
    'metr',
    `Scoring: ${result.scoring.direction} is better, the ${result.scoring.aggregation === 'best' ? 'best' : 'last'} score counts (confirm, or give --direction and --aggregation)`,
  );
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-metr-env-'));
  try {
    return {
      tmp,
      environmentDir: writeMetrEnvironment(tmp, result, {
        referenceScore: m.referenceScore,
        startingScore: m.startingScore,
        answerPattern: m.answerPattern,
        answerFormat: m.answerFormat,
        timeoutS,
      }),
    };
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof MetrPrepareError) throw new PrepareError('metr', e.message);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// This machine

function checkLocal(o: PrepareOptions): { bundle: EnvironmentBundle; tools: ToolFiles; vmScript: string } {
  if (!VM_USER_NAME.test(o.participant)) {
    throw new PrepareError(
      'usage',
      `"${o.participant}" is not a valid participant user name (lowercase letters, digits, "_" and "-", starting with a letter or "_", at most 32 characters).`,
    );
  }
  const scorer = o.scoringUser ?? DEFAULT_SCORING_USER;
  if (!VM_USER_NAME.test(scorer)) throw new PrepareError('usage', `"${scorer}" is not a valid scoring user name (lowercase letters, digits, "_" and "-").`);
  if (o.solutionDir !== undefined && !o.solutionDir.startsWith('/')) {
    throw new PrepareError('usage', `--solution-dir must be an absolute path on the VM, not "${o.solutionDir}".`);
  }
  if (o.participantPublicKey !== undefined && !/^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+( .*)?$/.test(o.participantPublicKey.trim())) {
    throw new PrepareError('usage', 'The participant\'s public key is not an OpenSSH public key line ("ssh-ed25519 AAAA... comment"); pass the .pub file.');
  }
  if (o.createParticipant && o.participantPublicKey === undefined) {
    throw new PrepareError('usage', "Creating the participant's login needs their public key (--participant-key FILE), or they could not log in.");
  }
  const dir = path.dirname(path.resolve(o.profilePath));
  if (!fs.existsSync(dir)) throw new PrepareError('usage', `The folder ${dir} for the profile does not exist; create it or pass another --out.`);
  const bundle = readEnvironmentBundle(o.environmentDir);
  const defaults = o.tools?.runnerPath && o.tools.provisionScriptPath && o.tools.vmScriptPath ? undefined : defaultToolFiles();
  const tools: ToolFiles = {
    runnerPath: o.tools?.runnerPath ?? (defaults as ToolFiles).runnerPath,
    provisionScriptPath: o.tools?.provisionScriptPath ?? (defaults as ToolFiles).provisionScriptPath,
    vmScriptPath: o.tools?.vmScriptPath ?? (defaults as ToolFiles).vmScriptPath,
  };
  for (const [what, p] of [
    ['runner', tools.runnerPath],
    ['provisioning script', tools.provisionScriptPath],
    ['VM-side script', tools.vmScriptPath],
  ] as const) {
    if (!fs.existsSync(p)) throw new PrepareError('install', `The ${what} ${p} does not exist; reinstall the package, or pass its path.`);
  }
  return { bundle, tools, vmScript: fs.readFileSync(tools.vmScriptPath, 'utf8') };
}

function readPreviousProfile(file: string): SessionProfile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PrepareError('profile', `Cannot read ${file} (${errorMessage(e)}); pick another --out.`);
  }
  const parsed = parseProfile(text, file);
  if (!parsed.ok) {
    throw new PrepareError('profile', `${file} exists and is not a session profile, so prepare will not overwrite it. Pick another --out, or remove the file.`);
  }
  return parsed.value;
}

/** Writes the profile atomically; false when the file already holds exactly this text. */
function writeProfile(file: string, text: string): boolean {
  try {
    if (fs.readFileSync(file, 'utf8') === text) return false;
  } catch {
    // not there yet
  }
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new PrepareError('profile', `Cannot write the profile ${file}: ${errorMessage(e)}. Pick another --out.`);
  }
  return true;
}

function kb(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} kB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// ---------------------------------------------------------------------------------------------------------
// The VM

async function run(remote: Remote, command: string, what: string, options: ExecOptions = {}): Promise<ExecResult> {
  try {
    return await remote.target.exec(command, options);
  } catch (e) {
    throw dropped(e, what, remote.target.label);
  }
}

function dropped(e: unknown, what: string, label: string): PrepareError {
  return new PrepareError(
    'connection',
    `The connection to ${label} failed while ${what} (${errorMessage(e)}). Run prepare again when the VM is reachable: it is safe to repeat and finishes what was started.`,
  );
}

async function openRemote(target: SshTarget, user: string, label: string, vmScript: string): Promise<Remote> {
  const probe = [
    'printf "uid=%s\\n" "$(id -u)"',
    'printf "home=%s\\n" "$HOME"',
    'for p in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3 2>/dev/null)"; do if [ -n "$p" ] && [ -x "$p" ]; then printf "python=%s\\n" "$p"; break; fi; done',
  ].join('; ');
  const remote: Remote = { target, root: '', python: '', home: '', vmScript };
  const r = await run(remote, probe, 'looking at the administrator login');
  const values = Object.fromEntries(
    r.stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  if (r.code !== 0 || !values.uid || !values.home?.startsWith('/')) {
    throw new PrepareError(
      'vm',
      `Logged in to ${label}, but a plain shell command failed there (exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}). Check that ${user} has a POSIX login shell and a home folder.`,
    );
  }
  if (!values.python) {
    throw new PrepareError(
      'vm',
      `python3 is not installed on ${label}; the runner needs Python 3.8 or newer. Install it (apt-get install python3) and run prepare again.`,
    );
  }
  remote.python = values.python;
  remote.home = values.home.replace(/\/+$/, '') || '/';
  if (values.uid !== '0') {
    const sudo = await run(remote, 'sudo -n true', 'checking sudo');
    if (sudo.code !== 0) throw new PrepareError('privileges', explainSudoFailure(user, sudo.code, sudo.stderr || sudo.stdout));
    remote.root = 'sudo -n ';
  }
  return remote;
}

/** Runs a prepare-vm.py command as root; returns its last JSON line (an error line becomes a PrepareError). */
async function vmCommand(remote: Remote, command: string, args: unknown, step: PrepareStep, what: string, options: ExecOptions = {}): Promise<unknown> {
  const line = `${remote.root}${shellQuote(remote.python)} -I - ${command} ${shellQuote(JSON.stringify(args))}`;
  const r = await run(remote, line, what, { ...options, stdin: remote.vmScript });
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  const last = lines[lines.length - 1];
  let reply: unknown;
  try {
    reply = last === undefined ? undefined : JSON.parse(last);
  } catch {
    reply = undefined;
  }
  const err = vmErrorSchema.safeParse(reply);
  if (err.success) throw new PrepareError(step === 'participant' ? 'participant' : 'vm', `On ${remote.target.label}, ${what} failed: ${err.data.message}`);
  if (r.code !== 0 || reply === undefined) {
    const said = `${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-6).join('\n').slice(0, 1200);
    throw new PrepareError(
      'vm',
      `On ${remote.target.label}, ${what} failed (exit ${r.code ?? r.signal}):\n${said || 'no output'}\nRun prepare again; if it fails the same way, check the VM's python3 (${remote.python}).`,
    );
  }
  return reply;
}

async function inspect(remote: Remote, e: Expected): Promise<Inspection> {
  const reply = await vmCommand(
    remote,
    'inspect',
    {
      environment: e.environmentId,
      participant: e.participant,
      scoring_user: e.scoringUser,
      solution_dir: e.solutionDir ?? null,
      solution_user: SOLUTION_USER,
    },
    'inspect',
    'inspecting the VM',
  );
  const parsed = inspectionSchema.safeParse(reply);
  if (!parsed.success)
    throw new PrepareError(
      'vm',
      `The VM's inspection reply has an unexpected shape (${parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}); check that environments/prepare-vm.py matches this version.`,
    );
  return parsed.data;
}

function blocked(blockers: string[], label: string): PrepareError {
  return new PrepareError(
    blockers.some((b) => /participant user .* does not exist/.test(b)) ? 'participant' : 'vm',
    `Nothing was changed on ${label}:\n${blockers.map((b) => `- ${b}`).join('\n')}`,
  );
}

async function remove(remote: Remote, dir: string): Promise<void> {
  const r = await run(remote, `rm -rf -- ${shellQuote(dir)}`, `removing ${dir}`);
  if (r.code !== 0)
    throw new PrepareError(
      'vm',
      `Could not remove ${dir} on ${remote.target.label}: ${r.stderr.trim()}. Remove it by hand; it holds a copy of the environment.`,
    );
}

async function upload(
  remote: Remote,
  stage: string,
  bundle: EnvironmentBundle,
  tools: ToolFiles,
  progress: (s: PrepareStep, m: string) => void,
): Promise<void> {
  // Always a fresh folder: whatever an interrupted run left there is never trusted. 0700: it holds protected/.
  const envDir = `${stage}/environment/${bundle.manifest.id}`;
  const mk = await run(
    remote,
    `rm -rf -- ${shellQuote(stage)} && mkdir -m 0700 -- ${shellQuote(stage)} && mkdir -p -- ${shellQuote(envDir)}`,
    `creating ${stage}`,
  );
  if (mk.code !== 0)
    throw new PrepareError(
      'vm',
      `Could not create the staging folder ${stage} on ${remote.target.label}: ${mk.stderr.trim()}. Check that the administrator's home is writable.`,
    );
  const dirs = bundle.entries.filter((e) => e.kind === 'dir').map((e) => `${envDir}/${e.rel}`);
  for (let i = 0; i < dirs.length; i += 200) {
    const r = await run(
      remote,
      `mkdir -p -- ${dirs
        .slice(i, i + 200)
        .map(shellQuote)
        .join(' ')}`,
      'creating folders',
    );
    if (r.code !== 0) throw new PrepareError('vm', `Could not create folders under ${envDir}: ${r.stderr.trim()}`);
  }
  const files: Array<[string, string, number]> = [
    [tools.runnerPath, `${stage}/runner.pyz`, 0o644],
    [tools.provisionScriptPath, `${stage}/provision-protected.sh`, 0o755],
    ...bundle.entries
      .filter((e) => e.kind === 'file')
      .map((e): [string, string, number] => [path.join(bundle.dir, e.rel), `${envDir}/${e.rel}`, e.executable ? 0o755 : 0o644]),
  ];
  let bytes = 0;
  for (const [from, to, mode] of files) {
    const data = fs.readFileSync(from);
    try {
      await remote.target.writeFile(to, data, mode);
    } catch (e) {
      if (isSshError(e)) throw dropped(e, `uploading ${to}`, remote.target.label);
      throw new PrepareError(
        'vm',
        `Could not upload ${from} to ${to} on ${remote.target.label}: ${errorMessage(e)}. Check the free space in the administrator's home.`,
      );
    }
    bytes += data.length;
  }
  progress('upload', `Uploaded the runner, provision-protected.sh and ${files.length - 2} environment files (${kb(bytes)}) to ${stage}`);
}

async function provision(remote: Remote, stage: string, bundle: EnvironmentBundle, e: Expected, progress: (s: PrepareStep, m: string) => void): Promise<void> {
  const args = [
    '--environment',
    `${stage}/environment/${bundle.manifest.id}`,
    '--runner',
    `${stage}/runner.pyz`,
    '--participant',
    e.participant,
    '--scoring-user',
    e.scoringUser,
    ...(e.solutionDir ? ['--solution-dir', e.solutionDir] : []),
    ...(e.force ? ['--force'] : []),
  ];
  let pending = '';
  const onStdout = (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    // Its closing lines are about the profile, which prepare writes itself with the key it verified.
    for (const l of lines)
      if (l.trim() && !/: (host key fingerprint for the session profile|done: give the participant)/.test(l))
        progress('provision', l.replace(/^provision-protected\.sh: /, ''));
  };
  const r = await run(
    remote,
    `${remote.root}bash ${shellQuote(`${stage}/provision-protected.sh`)} ${args.map(shellQuote).join(' ')}`,
    'running provision-protected.sh',
    { onStdout },
  );
  if (pending.trim()) progress('provision', pending.trim());
  if (r.code !== 0) {
    const said = r.stderr
      .split('\n')
      .map((l) => l.match(/^provision-protected\.sh: error: (.*)$/)?.[1])
      .filter((l): l is string => !!l);
    const detail = said.length ? said.join(' ') : (r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n');
    throw new PrepareError(
      'provision',
      `provision-protected.sh failed on ${remote.target.label}: ${detail}\nNothing else was done. Fix that and run prepare again (it is safe to repeat).`,
    );
  }
}

async function measure(
  remote: Remote,
  envId: string,
  sha256: string,
  scoringUser: string,
  progress: (s: PrepareStep, m: string) => void,
): Promise<StartingScoreRecord> {
  progress('starting-score', `Measuring the starting score on this VM: the installed scorer runs the starting solution once, as ${scoringUser}`);
  let pending = '';
  let record: StartingScoreRecord | undefined;
  let resumed = false;
  const onStdout = (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) {
      let raw: unknown;
      try {
        raw = JSON.parse(l);
      } catch {
        continue;
      }
      const ev = measureEventSchema.safeParse(raw);
      if (!ev.success) continue;
      if (ev.data.type === 'output') progress('scorer-output', ev.data.text);
      else if (ev.data.type === 'note') progress('starting-score', ev.data.message);
      else if (ev.data.type === 'job' && ev.data.job_id) progress('starting-score', `Scoring job ${ev.data.job_id} started`);
      else if (ev.data.type === 'measured') {
        record = ev.data.record;
        resumed = ev.data.resumed;
      }
    }
  };
  await vmCommand(
    remote,
    'measure',
    { environment: envId, environment_sha256: sha256, scoring_user: scoringUser },
    'starting-score',
    'measuring the starting score',
    { onStdout },
  );
  if (!record) throw new PrepareError('starting-score', `The measurement on ${remote.target.label} ended without a result; run prepare again.`);
  const r: StartingScoreRecord = record;
  progress(
    'starting-score',
    `${resumed ? 'Finished an earlier, interrupted measurement' : 'Measured'}: ${r.score === null ? 'no score' : fmt(r.score)} (manifest starting_score ${fmt(r.manifest_starting_score)}, ${r.duration_s ?? '?'} s)${r.message ? `: ${r.message}` : ''}`,
  );
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// Errors, in the organiser's words

function connectError(e: unknown, refusal: string | undefined, o: PrepareOptions, label: string): PrepareError {
  if (e instanceof PrepareError) return e;
  if (!isSshError(e)) return new PrepareError('connection', `Could not connect to ${label}: ${errorMessage(e)}`);
  if (e.code === 'host-key-unknown-rejected' || e.code === 'host-key-mismatch') {
    return new PrepareError('host-key', refusal ?? e.message);
  }
  if (e.code === 'auth-failed') {
    const refused = /It refused (.*?)\.(?= Also:| Check that|$)/.exec(e.message)?.[1];
    const hop = /^(\S+@\S+:\d+) did not accept/.exec(e.message)?.[1] ?? label;
    const offered = refused ? `It refused ${refused}.` : 'No key or password was offered.';
    const check =
      o.admin.password !== undefined
        ? `Check the user (--admin) and the password (--password-env)${o.admin.identityFiles?.length ? ', or the key (-i FILE)' : ''}.`
        : `Check the user (--admin) and the key (-i FILE), and that its public key is in ~${o.admin.user}/.ssh/authorized_keys on the VM; a password can be given with --password-env NAME (the VM's sshd must allow keyboard-interactive logins).`;
    return new PrepareError('login', `${hop} did not accept the administrator login. ${offered} ${check}`);
  }
  return new PrepareError('connection', `${e.message} Nothing was changed.`);
}

function asPrepareError(e: unknown, label: string): PrepareError {
  if (e instanceof PrepareError) return e;
  if (isSshError(e)) return dropped(e, 'working', label);
  return new PrepareError('vm', `Preparing ${label} failed: ${errorMessage(e)}. Run prepare again; it is safe to repeat.`);
}
