// Preparing a VM for real: src/organiser/prepare.ts over a private sshd on loopback, logged in as an
// administrator with a real sudo rule, installing with environments/provision-protected.sh for a real
// participant login, measuring the starting score through the installed runner as a real scoring user.
//
// It changes this machine as provisioning does (/etc/rebench, /usr/local/bin/rebench-runner,
// /etc/sudoers.d/rebench, a scoring user) plus its own users and sudo rule, so it runs only as root, only
// when no protected set-up that it did not make is present (it waits a while for another test's to go),
// and removes everything afterwards.

import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseProfile, type SessionProfile } from '../../src/core/profile';
import { RunnerClient } from '../../src/core/runnerClient';
import { SshTarget } from '../../src/core/ssh/sshTarget';
import type { ExecResult } from '../../src/core/target';
import { type PrepareOptions, type PrepareProgress, type PrepareResult, prepareVm } from '../../src/organiser/prepare';
import { PrepareError } from '../../src/organiser/prepareCore';
import { prepareCommand } from '../../src/organiser/prepareCommand';
import { recordFigure } from '../support/figures';
import { FIXTURE_ENVIRONMENTS, REPO_ROOT } from '../support/runner';
import { claimMachine, INSTALLED_RUNNER, MEASUREMENT_DIR, type PrepareMachine, PROTECTED_HOME, PROTECTED_SUDOERS, userExists } from '../support/prepareMachine';
import { loginUser, type Sshd, startSshd, TEST_USER, writeKnownHosts } from '../support/sshd';

const HOME = PROTECTED_HOME;
const RUNNER = INSTALLED_RUNNER;
const SUDOERS = PROTECTED_SUDOERS;
const SCRATCH = MEASUREMENT_DIR;
const ENV_ID = 'protected-demo';
const ENVIRONMENT = path.join(FIXTURE_ENVIRONMENTS, ENV_ID);
const ADMIN_PASSWORD = 'prepare-test-Pw-41';

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input });
}
function mode(p: string): string {
  return (fs.statSync(p).mode & 0o7777).toString(8).padStart(4, '0');
}
function owner(p: string): string {
  const st = fs.statSync(p);
  const name = (id: number, db: 'passwd' | 'group') => sh('getent', [db, String(id)]).split(':')[0];
  return `${name(st.uid, 'passwd')}:${name(st.gid, 'group')}`;
}

describe('Prepare a VM over SSH: provisioning, the starting score and the profile, run twice and cut short', function () {
  this.timeout(180_000);
  let participant = '';
  let participantHome = '';
  let machine: PrepareMachine;
  let ADMIN = '';
  let NO_SUDO = '';
  let CREATED = '';
  let SCORER = '';
  let sshd: Sshd;
  let work = '';
  let profilePath = '';
  const stageOf = (user: string) => path.join(user === 'root' ? '/root' : `/home/${user}`, '.rebench-prepare');
  const wipeInstallation = () => {
    machine.wipe(participantHome);
    fs.rmSync(profilePath, { force: true });
  };

  function options(extra: Partial<PrepareOptions> = {}, admin: Partial<PrepareOptions['admin']> = {}): PrepareOptions {
    return {
      admin: {
        host: sshd.host,
        port: sshd.port,
        user: ADMIN,
        identityFiles: [sshd.clientKeyPath],
        agent: false,
        knownHostsFiles: [],
        hostKeyFingerprint: sshd.hostFingerprint,
        ...admin,
      },
      participant,
      environmentDir: ENVIRONMENT,
      scoringUser: SCORER,
      profilePath,
      ...extra,
    };
  }
  async function prepare(
    extra: Partial<PrepareOptions> = {},
    admin: Partial<PrepareOptions['admin']> = {},
  ): Promise<{ result: PrepareResult; progress: PrepareProgress[]; ms: number }> {
    const progress: PrepareProgress[] = [];
    const started = Date.now();
    const result = await prepareVm({ ...options(extra, admin), onProgress: (p) => progress.push(p) });
    return { result, progress, ms: Date.now() - started };
  }
  async function cli(args: string[]): Promise<{ code: number; out: string; err: string; ms: number }> {
    const out: string[] = [];
    const err: string[] = [];
    const started = Date.now();
    const code = await prepareCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n'), ms: Date.now() - started };
  }
  /** The command line of a prepare that works; `change` replaces options' values, or removes them (null). */
  const argv = (change: Record<string, string | null> = {}, ...extra: string[]): string[] => {
    const base: Record<string, string> = {
      '--host': sshd.host,
      '--port': String(sshd.port),
      '--admin': ADMIN,
      '-i': sshd.clientKeyPath,
      '--participant': participant,
      '--environment': ENVIRONMENT,
      '--scoring-user': SCORER,
      '--out': profilePath,
      '--host-key-fingerprint': sshd.hostFingerprint,
    };
    const out: string[] = ['--no-agent'];
    for (const [k, v] of Object.entries({ ...base, ...change })) if (v !== null) out.push(k, v as string);
    return [...out, ...extra];
  };

  /** Runs a command as the participant over SSH with the profile prepare wrote: its pinned key, nothing else trusted. */
  async function asParticipant(profile: SessionProfile, fn: (t: SshTarget) => Promise<void>): Promise<void> {
    const t = new SshTarget({
      host: profile.host,
      port: profile.port,
      user: profile.user,
      identityFiles: [sshd.clientKeyPath],
      agent: false,
      knownHostsFiles: [],
      pinnedFingerprint: profile.host_key_fingerprint,
      jump: profile.jump
        ? {
            host: profile.jump.host,
            port: profile.jump.port,
            user: profile.jump.user,
            identityFiles: [sshd.clientKeyPath],
            pinnedFingerprint: profile.jump.host_key_fingerprint,
          }
        : undefined,
    });
    try {
      await t.connect();
      await fn(t);
    } finally {
      t.dispose();
    }
  }
  function readProfile(): SessionProfile {
    const parsed = parseProfile(fs.readFileSync(profilePath, 'utf8'), profilePath);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    return parsed.value;
  }

  before(async function () {
    ({ user: participant, home: participantHome } = loginUser());
    const claimed = await claimMachine(TEST_USER, 'test/system/prepare.system.test.ts');
    if (typeof claimed === 'string') {
      console.log(`      skipped: ${claimed}`);
      this.skip();
    }
    machine = claimed as PrepareMachine;
    ({ admin: ADMIN, noSudo: NO_SUDO, created: CREATED, scorer: SCORER } = machine);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-prepare-test-'));
    profilePath = path.join(work, 'participant.json');
    wipeInstallation(); // what an earlier, interrupted run left
    sshd = await startSshd();
  });

  after(async () => {
    await sshd?.stop();
    const problems = machine ? machine.release(participantHome) : [];
    if (work) fs.rmSync(work, { recursive: true, force: true });
    assert.deepEqual(problems, [], 'clean-up');
  });

  describe('failures say what is wrong and change nothing', () => {
    const nothingInstalled = () => {
      assert.ok(!fs.existsSync(RUNNER), 'the runner was not installed');
      assert.ok(!fs.existsSync(SUDOERS), 'no sudo rule was written');
      assert.ok(!fs.existsSync(path.join(HOME, 'runner.json')), 'no configuration was written');
      assert.ok(!fs.existsSync(profilePath), 'no profile was written');
      assert.ok(!fs.existsSync(stageOf(ADMIN)), 'nothing was uploaded');
    };

    it('an environment folder that does not exist, and bad arguments (exit 2)', async () => {
      const r = await cli(argv({ '--environment': path.join(work, 'no-such-env') }));
      assert.equal(r.code, 1, r.err);
      assert.match(
        r.err,
        /The environment folder .*no-such-env does not exist\. Pass --environment with the folder that holds the environment's manifest\.json/,
      );
      const bad = await cli(argv({ '--port': 'ssh' }));
      assert.equal(bad.code, 2);
      assert.match(bad.err, /--port must be a number from 1 to 65535, not "ssh"/);
      nothingInstalled();
    });

    it('a key the VM does not accept, and a wrong password', async () => {
      const wrongKey = path.join(work, 'not-authorised');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
      const r = await cli(argv({ '-i': wrongKey }));
      assert.equal(r.code, 1, r.out);
      assert.match(
        r.err,
        new RegExp(
          `${ADMIN}@127\\.0\\.0\\.1:${sshd.port} did not accept the administrator login\\. It refused ${wrongKey.replace(/\//g, '\\/')}\\. Check the user \\(--admin\\) and the key \\(-i FILE\\), and that its public key is in ~${ADMIN}/\\.ssh/authorized_keys on the VM`,
        ),
      );

      // Passwords go through keyboard-interactive, which this sshd offers through PAM.
      execFileSync('chpasswd', { input: `${ADMIN}:${ADMIN_PASSWORD}\n` });
      const pam = await startSshd({ extraConfig: ['KbdInteractiveAuthentication yes', 'UsePAM yes'] });
      try {
        const err = await prepareVm({
          ...options({}, { port: pam.port, identityFiles: [], password: 'not-the-password', hostKeyFingerprint: pam.hostFingerprint }),
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof PrepareError, String(err));
        assert.equal(err.code, 'login');
        assert.match(
          err.message,
          /did not accept the administrator login\. It refused keyboard-interactive\. Check the user \(--admin\) and the password \(--password-env\)\.$/,
        );
        assert.match(pam.readLog(), new RegExp(`PAM: Authentication failure for ${ADMIN}`));
      } finally {
        await pam.stop();
        execFileSync('usermod', ['-p', '*', ADMIN], { stdio: 'pipe' });
      }
      nothingInstalled();
    });

    it('a host key that is not the pinned one, or that nothing vouches for', async () => {
      const wrongPin = `SHA256:${'A'.repeat(43)}`;
      const pinned = await cli(argv({ '--host-key-fingerprint': wrongPin }));
      assert.equal(pinned.code, 1);
      assert.match(
        pinned.err,
        new RegExp(
          `The host key of 127\\.0\\.0\\.1:${sshd.port} is ${sshd.hostFingerprint.replace(/[+/]/g, '\\$&')}, but --host-key-fingerprint pins ${wrongPin}\\..*nothing was sent`,
        ),
      );
      const unknown = await cli(argv({ '--host-key-fingerprint': null, '--known-hosts': path.join(work, 'empty_known_hosts') }));
      assert.equal(unknown.code, 1);
      assert.match(
        unknown.err,
        /is not pinned and not in .*empty_known_hosts, so the VM's identity cannot be checked; nothing was sent\. .* pass --host-key-fingerprint SHA256:\S+ if it matches, or pass --accept-new-host-key/,
      );
      // Asked (as in VS Code), the organiser declines.
      const shown: string[] = [];
      const declined = await prepareVm({
        ...options({}, { hostKeyFingerprint: undefined }),
        confirmNewHostKey: async (k) => (shown.push(k.fingerprint), false),
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(declined instanceof PrepareError && declined.code === 'host-key', String(declined));
      assert.match(declined.message, /You did not trust the host key of 127\.0\.0\.1:\d+ \(ssh-ed25519 SHA256:\S+\); nothing was sent/);
      assert.deepEqual(shown, [sshd.hostFingerprint]);
      assert.doesNotMatch(sshd.readLog(), new RegExp(`Accepted publickey for ${ADMIN}`), 'no login happened before the host key was trusted');
      nothingInstalled();
    });

    it('an administrator without sudo', async () => {
      const r = await cli(argv({ '--admin': NO_SUDO }));
      assert.equal(r.code, 1, r.out);
      assert.match(
        r.err,
        new RegExp(
          `${NO_SUDO} cannot use sudo on the VM without a password \\(sudo said: "sudo: a password is required"\\).*Log in as root \\(--admin root\\), or give ${NO_SUDO} passwordless sudo`,
        ),
      );
      nothingInstalled();
    });

    it('a participant whose login does not exist', async () => {
      const err = await prepareVm(options({ participant: CREATED })).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof PrepareError, String(err));
      assert.equal(err.code, 'participant');
      assert.match(
        err.message,
        new RegExp(
          `Nothing was changed on [\\s\\S]*The participant user "${CREATED}" does not exist on the VM\\. Create their login first .* or run prepare with --create-participant --participant-key FILE`,
        ),
      );
      assert.ok(!userExists(CREATED));
      nothingInstalled();
    });
  });

  describe('a first prepare, then again', () => {
    let first: PrepareResult;

    it("installs everything as root, measures the starting score here and writes a profile pinning the VM's key", async () => {
      const r = await cli(argv({ '--host-key-fingerprint': null, '--known-hosts': path.join(work, 'empty_known_hosts') }, '--accept-new-host-key', '--json'));
      assert.equal(r.code, 0, r.err);
      first = JSON.parse(r.out) as PrepareResult;
      console.log(`      first prepare: ${r.ms} ms, ${first.changed.length} changes`);
      assert.match(r.err, /\[connect\] host key of 127\.0\.0\.1:\d+ ssh-ed25519 SHA256:\S+ accepted on first contact/);
      assert.match(r.err, /\[provision\] created the scoring user/);
      assert.match(r.err, /  \| read the hidden target as /);

      // Owners and modes: root owns the runner, the environment, the state and the rule; the scorer's group reads protected/.
      assert.equal(`${owner(RUNNER)} ${mode(RUNNER)}`, 'root:root 0755');
      const env = path.join(HOME, 'environments', ENV_ID);
      assert.equal(`${owner(path.join(env, 'score.py'))} ${mode(path.join(env, 'score.py'))}`, 'root:root 0644');
      assert.equal(`${owner(path.join(env, 'protected'))} ${mode(path.join(env, 'protected'))}`, `root:${SCORER} 0750`);
      assert.equal(`${owner(path.join(env, 'protected', 'target.json'))} ${mode(path.join(env, 'protected', 'target.json'))}`, `root:${SCORER} 0640`);
      assert.equal(`${owner(path.join(HOME, 'state'))} ${mode(path.join(HOME, 'state'))}`, 'root:root 0711');
      assert.equal(`${owner(path.join(HOME, 'runner.json'))} ${mode(path.join(HOME, 'runner.json'))}`, 'root:root 0644');
      assert.equal(`${owner(SUDOERS)} ${mode(SUDOERS)}`, 'root:root 0440');
      assert.equal(owner(path.join(participantHome, 'solution', 'answer.txt')), `${participant}:${participant}`);

      // The starting score: measured by the real scorer as the scoring user, recorded root-owned.
      assert.equal(first.startingScore?.measured, -42);
      assert.equal(first.startingScore?.manifest, -42);
      assert.equal(first.startingScore?.measuredNow, true);
      assert.match(first.startingScore?.message ?? '', new RegExp(`scored as ${SCORER}`));
      const record = JSON.parse(fs.readFileSync(path.join(HOME, 'starting-score.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(`${owner(path.join(HOME, 'starting-score.json'))} ${mode(path.join(HOME, 'starting-score.json'))}`, 'root:root 0644');
      assert.equal(record.score, -42);
      assert.equal(record.scoring_user, SCORER);
      assert.ok(!fs.existsSync(SCRATCH), "the measurement's runner home was removed");
      assert.ok(!fs.existsSync(stageOf(ADMIN)), 'the staging folder was removed');

      // The profile: valid for the extension, protected, pinning the key this sshd really has.
      const profile = readProfile();
      assert.equal(profile.host_key_fingerprint, sshd.hostFingerprint);
      assert.equal(first.hostKeyFingerprint, sshd.hostFingerprint);
      assert.deepEqual(
        { ...profile, name: '' },
        { name: '', host: '127.0.0.1', port: sshd.port, user: participant, host_key_fingerprint: sshd.hostFingerprint, environment: ENV_ID, protected: true },
      );
    });

    it('a second run, as root this time, changes nothing; so does a third with a known_hosts file', async () => {
      const snapshot = () =>
        [
          RUNNER,
          SUDOERS,
          path.join(HOME, 'runner.json'),
          path.join(HOME, 'starting-score.json'),
          path.join(HOME, 'environments', ENV_ID, 'score.py'),
          profilePath,
        ]
          .map((p) => `${p} ${fs.statSync(p).mtimeMs} ${fs.statSync(p).ino}`)
          .join('\n');
      const before = snapshot();
      const second = await prepare({}, { user: 'root', hostKeyFingerprint: undefined }); // the pin now comes from the profile written before
      assert.deepEqual(second.result.changed, []);
      assert.equal(second.result.unchanged.length, 14, second.result.unchanged.join('\n'));
      assert.equal(second.result.startingScore?.measuredNow, false);
      assert.ok(second.progress.some((p) => /matches the existing profile/.test(p.message)));
      assert.ok(!second.progress.some((p) => p.step === 'upload' || p.step === 'provision'), 'nothing was uploaded or provisioned');
      const known = path.join(work, 'known_hosts');
      writeKnownHosts(known, '127.0.0.1', sshd.port, sshd.hostPublicKey);
      fs.rmSync(profilePath);
      const third = await cli(argv({ '--host-key-fingerprint': null, '--known-hosts': known }));
      assert.equal(third.code, 0, third.err);
      assert.match(third.out, /found on line 1 of .*known_hosts/);
      assert.match(third.out, /Changed:\n {2}- wrote session profile/);
      assert.equal(readProfile().host_key_fingerprint, sshd.hostFingerprint);
      assert.equal(snapshot().split('\n').slice(0, 5).join('\n'), before.split('\n').slice(0, 5).join('\n'), 'no file on the VM was rewritten');
      console.log(`      second prepare (nothing to do): ${second.ms} ms; third: ${third.ms} ms`);
    });

    it('the participant scores only through the sudo rule, and cannot touch the score log, the scorer or the hidden data', async () => {
      const profile = readProfile();
      const attempts: Array<[string, string, RegExp]> = [
        ['read the hidden data', `cat ${HOME}/environments/${ENV_ID}/protected/target.json`, /Permission denied/],
        ['edit the scorer', `echo 'print(1)' >> ${HOME}/environments/${ENV_ID}/score.py`, /Permission denied/],
        ['write the score log', `echo '{}' >> ${HOME}/state/score.log.jsonl`, /Permission denied/],
        ['write the starting score', `echo '{}' > ${HOME}/starting-score.json`, /Permission denied/],
        ['run anything else as root', 'sudo -n id', /password is required|not allowed/],
        [
          'run the scorer as the scoring user',
          `sudo -n -u ${SCORER} /usr/bin/python3 ${HOME}/environments/${ENV_ID}/score.py`,
          /password is required|not allowed/,
        ],
      ];
      await asParticipant(profile, async (t) => {
        for (const [what, command, why] of attempts) {
          const r: ExecResult = await t.exec(command);
          assert.notEqual(r.code, 0, `the participant could ${what}`);
          assert.match(r.stderr, why, what);
        }
        const rules = await t.exec('sudo -n -l');
        assert.match(rules.stdout, new RegExp(`\\(root\\) NOPASSWD: ${RUNNER.replace(/\//g, '\\/')}\\s*$`));
        const client = new RunnerClient({
          target: t,
          environmentId: ENV_ID,
          runnerSource: '',
          environmentSource: '',
          protectedMode: true,
          logger: { info() {}, warn() {}, error() {} },
        });
        const status = await client.ensureRunnerSetUp();
        assert.equal(status.mode, 'protected');
        assert.equal(status.environment.starting_score, -42);
        await client.start();
        const entry = await client.score();
        assert.equal(entry.score, -42);
        assert.equal(entry.message, `guess 0 scored as ${SCORER}`);
      });
      assert.equal(owner(path.join(HOME, 'state', 'score.log.jsonl')), 'root:root');
    });

    it('during a session, prepare again leaves the session and its log alone', async () => {
      const log = fs.readFileSync(path.join(HOME, 'state', 'score.log.jsonl'));
      const session = fs.readFileSync(path.join(HOME, 'state', 'session.json'));
      const again = await prepare();
      assert.deepEqual(again.result.changed, []);
      assert.ok(fs.readFileSync(path.join(HOME, 'state', 'score.log.jsonl')).equals(log));
      assert.ok(fs.readFileSync(path.join(HOME, 'state', 'session.json')).equals(session));
    });

    it('a participant jump host: the profile names it with the key the connection verified, and works as written', async () => {
      const viaJump = path.join(work, 'via-jump.json');
      const logins = (user: string) => (sshd.readLog().match(new RegExp(`Accepted publickey for ${user} `, 'g')) ?? []).length;
      const adminLogins = logins(ADMIN);
      const r = await cli(
        argv(
          { '--out': viaJump, '--jump': `${participant}@127.0.0.1:${sshd.port}`, '--jump-admin': ADMIN, '--known-hosts': path.join(work, 'empty_known_hosts') },
          '--accept-new-host-key',
        ),
      );
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`Connecting to .* via ${ADMIN}@127\\.0\\.0\\.1:\\d+`));
      const parsed = parseProfile(fs.readFileSync(viaJump, 'utf8'), viaJump);
      assert.ok(parsed.ok);
      assert.deepEqual(parsed.value.jump, { host: '127.0.0.1', port: sshd.port, user: participant, host_key_fingerprint: sshd.hostFingerprint });
      assert.equal(logins(ADMIN) - adminLogins, 2, 'the administrator logged in to the jump host, then through it to the VM');
      const participantLogins = logins(participant);
      await asParticipant(parsed.value, async (t) => {
        const s = await t.exec(`sudo -n ${RUNNER} status --json`);
        assert.equal(JSON.parse(s.stdout).mode, 'protected');
      });
      assert.equal(logins(participant) - participantLogins, 2, 'the participant went through the jump host');
    });
  });

  describe("what scorers that run the participant's code need", () => {
    const SOLUTION_USER = 'rebench-solution';
    const sandbox = path.join(HOME, 'sandbox.json');
    const secret = path.join(HOME, 'scorer-secret');
    const solutionRule = `${SUDOERS}-solution`;

    it('is checked by name: a sandbox.json naming another user, a scorer secret others can read, no scorer sudo rule and no solution user; the next prepare puts each right', async () => {
      // As the first prepare left them.
      const config = JSON.parse(fs.readFileSync(sandbox, 'utf8')) as Record<string, string>;
      assert.equal(`${owner(sandbox)} ${mode(sandbox)}`, 'root:root 0644');
      assert.equal(config.scoring_user, SCORER);
      assert.equal(config.solution_user, SOLUTION_USER);
      assert.equal(`${owner(secret)} ${mode(secret)}`, `root:${SCORER} 0640`);
      assert.equal(`${owner(solutionRule)} ${mode(solutionRule)}`, 'root:root 0440');
      assert.ok(userExists(SOLUTION_USER));
      const secretBefore = fs.readFileSync(secret);

      fs.writeFileSync(sandbox, JSON.stringify({ ...config, solution_user: participant }));
      fs.chmodSync(secret, 0o644);
      fs.rmSync(solutionRule);
      sh('userdel', [SOLUTION_USER]);

      const again = await prepare();
      const todo = again.progress.filter((p) => p.step === 'provision' && p.message.startsWith('To do: ')).map((p) => p.message.slice(7));
      assert.deepEqual(todo, [
        `the solution user ${SOLUTION_USER} does not exist yet`,
        `${HOME}/sandbox.json does not name ${SCORER}, ${SOLUTION_USER} and the runner's python`,
        `the scorer secret ${HOME}/scorer-secret is root:${SCORER} 0644, not root:${SCORER} 0640`,
        `the sudo rule ${SUDOERS}-solution does not exist`,
      ]);
      assert.ok(
        again.progress.some((p) => p.step === 'verify' && /^Checked: 12 of 12 items in place$/.test(p.message)),
        again.progress.map((p) => `${p.step}: ${p.message}`).join('\n'),
      );
      assert.equal(JSON.parse(fs.readFileSync(sandbox, 'utf8')).solution_user, SOLUTION_USER);
      assert.equal(`${owner(sandbox)} ${mode(sandbox)}`, 'root:root 0644');
      assert.equal(`${owner(secret)} ${mode(secret)}`, `root:${SCORER} 0640`);
      assert.ok(fs.readFileSync(secret).equals(secretBefore), 'the secret keeps its value (a started session keeps its seeds)');
      assert.equal(`${owner(solutionRule)} ${mode(solutionRule)}`, 'root:root 0440');
      assert.ok(userExists(SOLUTION_USER));
    });
  });

  describe('cut short, then run again', () => {
    it('stopped right after the upload: nothing installed, the staging folder private; the next run completes', async () => {
      wipeInstallation();
      const controller = new AbortController();
      const err = await prepareVm({
        ...options(),
        signal: controller.signal,
        onProgress: (p) => {
          if (p.step === 'upload') controller.abort();
        },
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof PrepareError, String(err));
      assert.equal(err.code, 'cancelled');
      assert.match(err.message, /Cancelled after uploading to .*\.rebench-prepare\. Run prepare again to finish/);
      assert.ok(!fs.existsSync(RUNNER) && !fs.existsSync(SUDOERS), 'nothing was installed');
      assert.equal(
        `${owner(stageOf(ADMIN))} ${mode(stageOf(ADMIN))}`,
        `${ADMIN}:${ADMIN} 0700`,
        "the staging folder (it holds protected/) is the administrator's alone",
      );

      const again = await prepare();
      assert.ok(again.result.changed.length >= 9, again.result.changed.join('\n'));
      assert.equal(again.result.startingScore?.measured, -42);
      assert.ok(!fs.existsSync(stageOf(ADMIN)));
      assert.deepEqual((await prepare()).result.changed, []);
    });

    it('the command killed (SIGKILL) while the starting score is measured: the next run finishes that measurement instead of scoring twice', async () => {
      wipeInstallation();
      // A copy whose starting solution makes the scorer wait 4 s, long enough to kill the command mid-job.
      const slow = path.join(work, ENV_ID);
      fs.rmSync(slow, { recursive: true, force: true });
      fs.cpSync(ENVIRONMENT, slow, { recursive: true });
      fs.writeFileSync(path.join(slow, 'solution', 'delay_s'), '4\n');
      const script = path.join(work, 'run-prepare.ts');
      fs.writeFileSync(
        script,
        `import { prepareCommand } from ${JSON.stringify(path.join(REPO_ROOT, 'src', 'organiser', 'prepareCommand'))};\n` +
          'prepareCommand(process.argv.slice(2), { out: (l) => console.log(l), err: (l) => console.error(l) }).then((c) => process.exit(c));\n',
      );
      const args = argv({ '--environment': slow });
      const child = spawn(process.execPath, ['--require', 'tsx/cjs', script, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const killed = await new Promise<boolean>((resolve) => {
        const onData = (d: Buffer) => {
          output += d.toString();
          if (/Scoring job \S+ started/.test(output) && child.pid !== undefined) {
            child.kill('SIGKILL');
            resolve(true);
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.once('exit', () => resolve(false));
      });
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
      assert.ok(killed, `the command ended before the scoring job started:\n${output}`);
      assert.ok(!fs.existsSync(path.join(HOME, 'starting-score.json')), 'no starting score was recorded by the killed run');
      assert.ok(fs.existsSync(path.join(SCRATCH, 'starting-score')), "the measurement's runner home is still there");

      const again = await prepare({ environmentDir: slow });
      const resumed = again.progress.find((p) => /Finished an earlier, interrupted measurement/.test(p.message));
      assert.ok(resumed, again.progress.map((p) => p.message).join('\n'));
      assert.equal(again.result.startingScore?.measured, -42);
      assert.ok(!fs.existsSync(SCRATCH), "the measurement's runner home was removed");
      const scorerRuns =
        again.progress.filter((p) => p.step === 'scorer-output' && /waiting 4\.0 s/.test(p.message)).length + (/waiting 4\.0 s/.test(output) ? 1 : 0);
      assert.ok(scorerRuns <= 1, `the scorer ran ${scorerRuns} times`);
      assert.deepEqual((await prepare({ environmentDir: slow })).result.changed, []);
      recordFigure({
        test: 'Prepare a VM, cut short',
        proves:
          'prepare stopped after its upload, or killed while measuring the starting score, completes on the next run without installing anything twice or scoring the starting solution twice',
        faultsInjected: 2,
        faultsSurvived: 2,
      });
    });
  });

  describe('a participant login that prepare creates', () => {
    it("creates the login with the participant's key, points the sudo rule at it, and a second run changes nothing", async () => {
      wipeInstallation();
      const keyFile = path.join(work, 'participant_ed25519');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'participant-key', '-f', keyFile]);
      const args = argv({ '--participant': CREATED, '--participant-key': `${keyFile}.pub` });
      const refused = await cli(argv({ '--participant': CREATED }, '--create-participant'));
      assert.equal(refused.code, 2);
      assert.match(refused.err, /--create-participant needs --participant-key FILE/);
      const r = await cli([...args, '--create-participant']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`created the participant's login ${CREATED}`));
      const home = sh('getent', ['passwd', CREATED]).split(':')[5] as string;
      const authorized = path.join(home, '.ssh', 'authorized_keys');
      assert.equal(fs.readFileSync(authorized, 'utf8'), fs.readFileSync(`${keyFile}.pub`, 'utf8'));
      assert.equal(`${owner(authorized)} ${mode(authorized)}`, `${CREATED}:${CREATED} 0600`);
      assert.equal(`${owner(path.join(home, '.ssh'))} ${mode(path.join(home, '.ssh'))}`, `${CREATED}:${CREATED} 0700`);
      assert.match(fs.readFileSync(SUDOERS, 'utf8'), new RegExp(`^${CREATED} ALL=\\(root\\) NOPASSWD: ${RUNNER.replace(/\//g, '\\/')}$`, 'm'));
      assert.equal(readProfile().user, CREATED);
      const again = await cli([...args, '--create-participant', '--json']);
      assert.equal(again.code, 0, again.err);
      assert.deepEqual((JSON.parse(again.out) as PrepareResult).changed, []);
      fs.rmSync(path.join(home, 'solution'), { recursive: true, force: true });
    });
  });
});
