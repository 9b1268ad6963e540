// Protected mode on a real set-up on this machine: environments/provision-protected.sh runs as root, the
// participant logs in over SSH to a private sshd (test/support/sshd.ts) and works only through the one
// sudo rule. The session works end to end; every way around the rule we could think of is refused.
//
// It changes the machine (/etc/rebench, /usr/local/bin/rebench-runner, /etc/sudoers.d/rebench, a system
// user), so it runs only as root and only when none of those exist, unless a marker file shows that an
// earlier run of this test left them; it removes all of them afterwards.

import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUNNER_VERSION, type ScoreLogEntry } from '../../src/core/runnerProtocol';
import { RunnerCommandError, RunnerClient } from '../../src/core/runnerClient';
import { SshTarget } from '../../src/core/ssh/sshTarget';
import type { ExecResult } from '../../src/core/target';
import { recordFigure } from '../support/figures';
import { INSTALLED_RUNNER, PROTECTED_HOME, PROTECTED_SUDOERS } from '../support/prepareMachine';
import { participantConnection, protectedSetup } from '../support/protectedSetup';
import { FIXTURE_ENVIRONMENTS, REPO_ROOT } from '../support/runner';
import { loginUser, type Sshd, startSshd, TEST_USER } from '../support/sshd';

const SCRIPT = path.join(REPO_ROOT, 'environments', 'provision-protected.sh');
const ENVIRONMENT = path.join(FIXTURE_ENVIRONMENTS, 'protected-demo');
const ENV_ID = 'protected-demo';
const HOME = PROTECTED_HOME;
const RUNNER = INSTALLED_RUNNER;
const SUDOERS = PROTECTED_SUDOERS;
const SCORER = 'rebench-scorer-t';
const SOLUTION_USER = 'rebench-solution-t';
/** Claimed by a marker in /etc/rebench before provisioning: what this test may remove afterwards. */
const machine = protectedSetup({
  testFile: 'test/system/protected.system.test.ts',
  marker: '.protected-system-test',
  users: [SCORER, SOLUTION_USER],
});

function provision(args: string[] = []): { code: number | null; out: string } {
  const r = spawnSync(
    'bash',
    [SCRIPT, '--environment', ENVIRONMENT, '--participant', loginUser().user, '--scoring-user', SCORER, '--solution-user', SOLUTION_USER, ...args],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function mode(p: string): string {
  return (fs.statSync(p).mode & 0o7777).toString(8).padStart(4, '0');
}

function owner(p: string): string {
  const st = fs.statSync(p);
  const name = (id: number, db: 'passwd' | 'group') => execFileSync('getent', [db, String(id)], { encoding: 'utf8' }).split(':')[0];
  return `${name(st.uid, 'passwd')}:${name(st.gid, 'group')}`;
}

const denied = /Permission denied/;
const sudoRefused = /a password is required|not allowed to|may not run/;

describe('Protected mode on a real set-up: provision-protected.sh, the sudo rule and a scoring user', function () {
  this.timeout(120_000);
  let user = '';
  let home = '';
  let solutionDir = '';
  let sshd: Sshd;
  let target: SshTarget;
  let client: RunnerClient;
  const logLines: string[] = [];
  const logger = {
    info: (m: string) => logLines.push(`info ${m}`),
    warn: (m: string) => logLines.push(`warn ${m}`),
    error: (m: string) => logLines.push(`error ${m}`),
  };
  /** Runs a shell command as the participant over SSH. */
  const asParticipant = (command: string): Promise<ExecResult> => target.exec(command);
  let attempts = 0;
  let refused = 0;
  /** One way around the rules: it must fail, and `proof` says how. */
  const attempt = async (what: string, command: string, check: (r: ExecResult) => void) => {
    attempts++;
    const r = await asParticipant(command);
    assert.notEqual(r.code, 0, `${what} succeeded:\n$ ${command}\n${r.stdout}${r.stderr}`);
    check(r);
    refused++;
  };
  let entries: ScoreLogEntry[] = [];

  before(async function () {
    const why = machine.unsuitable();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    ({ user, home } = loginUser());
    solutionDir = path.join(home, 'solution');
    machine.claim(solutionDir);
    sshd = await startSshd();
  });

  after(async () => {
    target?.dispose();
    await sshd?.stop();
    if (solutionDir) machine.cleanUp(solutionDir);
    assert.ok(!fs.existsSync(SUDOERS) || !machine.ours(), 'the sudo rule was removed');
  });

  describe('provisioning', () => {
    it('refuses to run as anyone but root, saying so', () => {
      const r = spawnSync('runuser', ['-u', user, '--', 'bash', SCRIPT, '--environment', ENVIRONMENT, '--participant', user, '--scoring-user', SCORER], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /must run as root\. Run it again with sudo/);
      assert.ok(!fs.existsSync(RUNNER), 'nothing was installed');
    });

    it('refuses bad arguments with a message naming the problem', () => {
      const cases: [string[], RegExp][] = [
        [['--environment', '/nonexistent-env'], /the environment folder \/nonexistent-env does not exist/],
        [['--participant', 'no-such-user-x'], /the participant user "no-such-user-x" does not exist/],
        [['--scoring-user', user], /the scoring user must differ from the participant/],
        [['--solution-dir', 'relative/dir'], /--solution-dir must be an absolute path/],
        [['--frobnicate'], /unknown argument "--frobnicate"/],
      ];
      for (const [extra, message] of cases) {
        const r = provision(extra);
        assert.notEqual(r.code, 0, `accepted ${extra.join(' ')}`);
        assert.match(r.out, message);
      }
      assert.ok(!fs.existsSync(RUNNER) && !fs.existsSync(SUDOERS), 'nothing was installed by a refused run');
    });

    it('installs the runner, the environment, the state folder, the solution and one sudo rule, and checks them', () => {
      fs.rmSync(solutionDir, { recursive: true, force: true });
      const started = Date.now();
      const r = provision();
      assert.equal(r.code, 0, r.out);
      console.log(
        `      provisioned in ${Date.now() - started} ms:\n${r.out
          .trim()
          .split('\n')
          .map((l) => `        ${l}`)
          .join('\n')}`,
      );
      assert.match(r.out, new RegExp(`created the scoring user ${SCORER}`));
      assert.match(r.out, new RegExp(`checked as ${TEST_USER}: sudo -n /usr/local/bin/rebench-runner status says mode protected`));

      assert.equal(owner(RUNNER), 'root:root');
      assert.equal(mode(RUNNER), '0755');
      assert.match(fs.readFileSync(RUNNER, 'utf8').split('\n')[0] ?? '', /^#!\/\S+python3\S* -I$/);
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(HOME, 'runner.json'), 'utf8')), {
        mode: 'protected',
        environment: ENV_ID,
        environments_dir: `${HOME}/environments`,
        state_dir: `${HOME}/state`,
        solution_dir: solutionDir,
        scoring_user: SCORER,
      });
      assert.equal(owner(path.join(HOME, 'runner.json')), 'root:root');
      assert.equal(mode(path.join(HOME, 'state')), '0711');
      assert.equal(owner(path.join(HOME, 'state')), 'root:root');
      const env = path.join(HOME, 'environments', ENV_ID);
      assert.equal(owner(path.join(env, 'score.py')), 'root:root');
      assert.equal(mode(path.join(env, 'score.py')), '0644');
      assert.equal(owner(path.join(env, 'protected')), `root:${SCORER}`);
      assert.equal(mode(path.join(env, 'protected')), '0750');
      assert.equal(mode(path.join(env, 'protected', 'target.json')), '0640');
      assert.equal(owner(path.join(solutionDir, 'answer.txt')), `${user}:${user}`);
      assert.equal(fs.readFileSync(path.join(solutionDir, 'answer.txt'), 'utf8').trim(), '0');
      assert.equal(mode(SUDOERS), '0440');
      assert.equal(
        fs
          .readFileSync(SUDOERS, 'utf8')
          .split('\n')
          .filter((l) => l.trim() && !l.startsWith('#'))
          .join('\n'),
        `Defaults!${RUNNER} !requiretty\n${user} ALL=(root) NOPASSWD: ${RUNNER}`,
      );
      execFileSync('visudo', ['-cf', SUDOERS], { stdio: 'pipe' });
      const shell = execFileSync('getent', ['passwd', SCORER], { encoding: 'utf8' }).trim().split(':')[6];
      assert.match(shell ?? '', /nologin|false/, 'the scoring user has no login shell');
    });

    it("can run again: same result, and the participant's work is kept", () => {
      fs.writeFileSync(path.join(solutionDir, 'answer.txt'), '17\n');
      const r = provision();
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`scoring user ${SCORER} exists`));
      assert.match(r.out, /left as it is/);
      assert.equal(fs.readFileSync(path.join(solutionDir, 'answer.txt'), 'utf8'), '17\n');
      assert.equal(
        fs
          .readdirSync('/etc/sudoers.d')
          .filter((f) => f.includes('rebench'))
          .sort()
          .join(),
        'rebench,rebench-solution',
        'the two rule files, no drafts left',
      );
      assert.deepEqual(fs.readdirSync(path.join(HOME, 'environments')), [ENV_ID], 'no staging folders left');
      fs.writeFileSync(path.join(solutionDir, 'answer.txt'), '0\n');
    });
  });

  describe('the participant over SSH', () => {
    before(async function () {
      if (!fs.existsSync(SUDOERS)) this.skip(); // provisioning failed; its test says why
      for (const rel of ['.rebench', 'rebench']) fs.rmSync(path.join(home, rel), { recursive: true, force: true });
      target = await participantConnection(sshd, logger);
      client = new RunnerClient({
        target,
        environmentId: ENV_ID,
        runnerSource: path.join(sshd.dir, 'no-runner-to-upload.py'),
        environmentSource: path.join(sshd.dir, 'no-environment-to-upload'),
        protectedMode: true,
        logger,
      });
    });

    it('prepare checks the runner version through sudo and uploads nothing', async () => {
      const status = await client.ensureRunnerSetUp();
      assert.equal(status.runner_version, RUNNER_VERSION);
      assert.equal(status.mode, 'protected');
      assert.equal(status.environment.id, ENV_ID);
      assert.equal(status.solution_dir, solutionDir);
      assert.equal(status.state, 'not_started');
      assert.ok(!fs.existsSync(path.join(home, '.rebench')), "nothing was uploaded to the participant's home");
      assert.ok(!logLines.some((l) => /Uploading/.test(l)), logLines.join('\n'));

      // A runner of another version, or none, stops the connection with a message for the organiser.
      await target.writeFile(`${home}/old-runner`, '#!/bin/sh\necho 0.9.0\n', 0o755);
      const old = new RunnerClient({
        target,
        environmentId: ENV_ID,
        runnerSource: '',
        environmentSource: '',
        protectedMode: true,
        protectedRunnerCommand: `${home}/old-runner`,
        logger,
      });
      await assert.rejects(
        old.ensureRunnerSetUp(),
        new RegExp(`version 0\\.9\\.0, but this extension needs ${RUNNER_VERSION.replace(/\./g, '\\.')}\\. Ask your organiser`),
      );
      const none = new RunnerClient({
        target,
        environmentId: ENV_ID,
        runnerSource: '',
        environmentSource: '',
        protectedMode: true,
        protectedRunnerCommand: 'sudo -n /usr/local/bin/no-such-runner',
        logger,
      });
      await assert.rejects(none.ensureRunnerSetUp(), /The protected runner could not be run .*Ask your organiser to check the VM's set-up/);
      fs.rmSync(`${home}/old-runner`);
    });

    it('runs the session: status, instructions, start, two scores as the scoring user, log, verify, export', async () => {
      const { status } = await client.status();
      assert.equal(status.mode, 'protected');
      assert.match((await client.instructions()).markdown, /Guess the hidden number/);
      const started = await client.start();
      assert.equal(started.state, 'running');

      const output: string[] = [];
      const first = await client.score({ onOutput: (t) => output.push(t) });
      assert.equal(first.score, -42);
      assert.equal(first.message, `guess 0 scored as ${SCORER}`);
      assert.match(output.join(''), new RegExp(`read the hidden target as ${SCORER}`));
      // The runner handed the job's result folder to the scoring user, not to the participant.
      const resultDir = path.join(HOME, 'state', 'jobs', first.job_id, 'result');
      assert.equal(owner(resultDir), `${SCORER}:${SCORER}`);
      assert.equal(mode(resultDir), '0700');

      await target.writeFile(`${solutionDir}/answer.txt`, '40\n');
      const second = await client.score();
      assert.equal(second.score, -2);
      entries = await client.log();
      assert.deepEqual(
        entries.map((e) => [e.index, e.score]),
        [
          [0, -42],
          [1, -2],
        ],
      );
      assert.deepEqual(await client.verify(), { intact: true, entries: 2, first_bad: null, reason: null });
      const { status: after } = await client.status();
      assert.deepEqual(after.counted, { index: 1, score: -2, normalized: (-2 - -42) / (0 - -42) });
      const csv = (await client.export('metr-csv')).trim().split('\n');
      assert.equal(csv[0], 'timestamp,score,message,details');
      assert.equal(csv.length, 3);
    });

    it('cannot write the score log, the session or anything else in the state folder', async () => {
      const state = `${HOME}/state`;
      await attempt('appending to the score log', `printf '{"score":0}\\n' >> ${state}/score.log.jsonl`, (r) => assert.match(r.stderr, denied));
      await attempt('replacing the score log', `cp /dev/null ${state}/score.log.jsonl`, (r) => assert.match(r.stderr, denied));
      await attempt('moving the deadline (writing session.json)', `echo '{}' > ${state}/session.json`, (r) => assert.match(r.stderr, denied));
      await attempt('adding a file to the state folder', `touch ${state}/extra`, (r) => assert.match(r.stderr, denied));
      await attempt('listing the state folder', `ls ${state}`, (r) => assert.match(r.stderr, denied));
      await attempt('writing runner.json', `echo '{}' > ${HOME}/runner.json`, (r) => assert.match(r.stderr, denied));
      await attempt('adding an environment', `mkdir ${HOME}/environments/mine`, (r) => assert.match(r.stderr, denied));
    });

    it('cannot read the hidden scorer data, nor change the scorer', async () => {
      const env = `${HOME}/environments/${ENV_ID}`;
      await attempt('reading the hidden target', `cat ${env}/protected/target.json`, (r) => assert.match(r.stderr, denied));
      await attempt('listing the hidden folder', `ls ${env}/protected`, (r) => assert.match(r.stderr, denied));
      await attempt('editing the scorer', `echo 'print(1)' >> ${env}/score.py`, (r) => assert.match(r.stderr, denied));
      await attempt('replacing the scorer', `cp /dev/null ${env}/score.py`, (r) => assert.match(r.stderr, denied));
      // What the participant may read, as in METR's set-up: the scorer's code and the instructions.
      const readable = await asParticipant(`cat ${env}/score.py ${env}/instructions.md > /dev/null`);
      assert.equal(readable.code, 0, readable.stderr);
    });

    it('cannot replace the runner', async () => {
      await attempt('appending to the runner', `echo 'import os' >> ${RUNNER}`, (r) => assert.match(r.stderr, denied));
      await attempt('copying over the runner', `cp /bin/true ${RUNNER}`, (r) => assert.match(r.stderr, denied));
      await attempt('putting a runner beside it', `cp /bin/true /usr/local/bin/rebench-runner2`, (r) => assert.match(r.stderr, denied));
    });

    it('gets nothing else from sudo: no other command, no other user, not the scorer as the scoring user', async () => {
      await attempt('sudo id', 'sudo -n id', (r) => assert.match(r.stderr, sudoRefused));
      await attempt('a root shell', 'sudo -n -s true', (r) => assert.match(r.stderr, sudoRefused));
      await attempt('the scorer as the scoring user', `sudo -n -u ${SCORER} /usr/bin/python3 ${HOME}/environments/${ENV_ID}/score.py`, (r) =>
        assert.match(r.stderr, sudoRefused),
      );
      await attempt('the runner as the scoring user', `sudo -n -u ${SCORER} ${RUNNER} status`, (r) => assert.match(r.stderr, sudoRefused));
      await attempt('the runner through another interpreter', `sudo -n /usr/bin/python3 ${RUNNER} status`, (r) => assert.match(r.stderr, sudoRefused));
      await attempt('the runner with variables of our own', `sudo -n REBENCH_HOME=/tmp ${RUNNER} status`, (r) => assert.match(r.stderr, sudoRefused));
      await attempt('editing a file as root', 'sudo -n -e /etc/hosts', (r) => assert.match(r.stderr, sudoRefused));
      const list = await asParticipant('sudo -n -l');
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`\\(root\\) NOPASSWD: ${RUNNER.replace(/\//g, '\\/')}\\s*$`));
      assert.doesNotMatch(list.stdout.split(/may run the following commands/)[1] ?? '', /\bALL\s*$/m, 'no blanket rule');
    });

    it('cannot steer the root runner elsewhere with its arguments', async () => {
      // A runner home of the participant's own whose scorer would prove it ran as root.
      const evil = `/tmp/rebench-evil-${randomBytes(4).toString('hex')}`;
      const proof = `${evil}/ran-as-root`;
      const envDir = `${evil}/environments/evil`;
      const manifest = {
        id: 'evil',
        title: 'evil',
        version: '1',
        instructions: 'i.md',
        solution: 'solution',
        scoring: {
          command: ['/bin/sh', '-c', `id -u > ${proof}`],
          direction: 'higher',
          aggregation: 'best',
          starting_score: 0,
          reference_score: 1,
          timeout_s: 10,
        },
      };
      await target.writeFile(`${envDir}/manifest.json`, JSON.stringify(manifest));
      await target.writeFile(`${envDir}/i.md`, 'x');
      await target.writeFile(`${envDir}/solution/x`, 'x');
      await target.writeFile(
        `${evil}/runner.json`,
        JSON.stringify({
          mode: 'unprotected',
          environment: 'evil',
          environments_dir: `${evil}/environments`,
          state_dir: `${evil}/state`,
          solution_dir: `${evil}/sol`,
          scoring_user: null,
        }),
      );
      const refusedCode = (r: ExecResult) => {
        assert.equal(r.code, 4, `${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /"code": "refused"/);
      };
      try {
        await attempt(
          '--home to a home of our own',
          `sudo -n ${RUNNER} --home ${evil} start --json && sudo -n ${RUNNER} --home ${evil} score --follow --json`,
          (r) => {
            refusedCode(r);
            assert.match(r.stdout, /uses only \/etc\/rebench; --home \/tmp\/rebench-evil-\w+ is refused/);
          },
        );
        await attempt('--home= to a home of our own', `sudo -n ${RUNNER} --home=${evil} status --json`, refusedCode);
        await attempt('--home to a path that leads elsewhere', `sudo -n ${RUNNER} --home /etc/rebench/../../${evil} status --json`, refusedCode);
        await attempt(
          'a link named like the protected home',
          `ln -sfn ${evil} ${evil}-link && sudo -n ${RUNNER} --home ${evil}-link status --json`,
          refusedCode,
        );
        await attempt('setup of our own environment', `sudo -n ${RUNNER} setup --environment evil --environments-dir ${evil}/environments --json`, (r) => {
          refusedCode(r);
          assert.match(r.stdout, /setup is for unprotected mode/);
        });
        await attempt('export --out to a root-only place', `sudo -n ${RUNNER} export --format jsonl --out /etc/cron.d/rebench-evil --json`, (r) => {
          refusedCode(r);
          assert.match(r.stdout, /redirect the output instead/);
        });
        await attempt('import-metr-csv of a root-only file', `sudo -n ${RUNNER} import-metr-csv /etc/shadow --json`, refusedCode);
        // The sudo rule is the only thing between the participant and root: it resets the environment.
        const viaEnv = await asParticipant(`REBENCH_HOME=${evil} sudo -n ${RUNNER} status --json`);
        assert.equal(viaEnv.code, 0, viaEnv.stderr);
        assert.equal(JSON.parse(viaEnv.stdout).mode, 'protected', 'REBENCH_HOME does not reach the root runner');
        assert.ok(!fs.existsSync(proof), "the participant's scorer ran as root");
        assert.ok(!fs.existsSync('/etc/cron.d/rebench-evil'));
        assert.ok(!fs.existsSync(`${evil}/state/session.json`), "the root runner wrote into the participant's home");
      } finally {
        fs.rmSync(evil, { recursive: true, force: true });
        fs.rmSync(`${evil}-link`, { force: true });
      }
    });

    it('cannot run a scoring job a second time through the internal _run-job command', async () => {
      // A job that is still running has no entry yet; a second run of it could finish first with a later solution.
      await target.writeFile(`${solutionDir}/delay_s`, '3');
      const reply = await asParticipant(`sudo -n ${RUNNER} score --json`);
      assert.equal(reply.code, 0, reply.stderr);
      const jobId = (JSON.parse(reply.stdout) as { job_id: string }).job_id;
      await attempt('_run-job with a lock of our own', `sudo -n ${RUNNER} _run-job ${jobId} --lock-fd 0 --json < ${solutionDir}/answer.txt`, (r) => {
        assert.equal(r.code, 2, r.stdout);
        assert.match(r.stdout, /_run-job is internal/);
      });
      const output: string[] = [];
      const entry = await client.attach(jobId, 0, { onOutput: (t) => output.push(t) });
      await target.exec(`rm -f ${solutionDir}/delay_s`);
      assert.equal(entry.index, 2);
      assert.equal(entry.score, -2);
      assert.equal(output.join('').match(/waiting 3\.0 s/g)?.length, 1, `the scorer ran once: ${output.join('')}`);
      assert.equal((await client.log()).filter((e) => e.job_id === jobId).length, 1);
    });

    it("after every attempt the score log is intact, and the organiser's audit trail names them", async () => {
      const verdict = await client.verify();
      assert.equal(verdict.intact, true, verdict.reason ?? '');
      const log = await client.log();
      assert.deepEqual(log.slice(0, 2), entries, 'the first entries are unchanged');
      const events = fs
        .readFileSync(path.join(HOME, 'state', 'events.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const refusals = events.filter((e) => e.event === 'refused' && e.caller === user);
      assert.ok(refusals.length >= 6, `refusals recorded: ${JSON.stringify(refusals)}`);
      assert.ok(refusals.some((e) => /--home \/tmp\/rebench-evil/.test(String(e.reason))));
      console.log(`      ${refused} of ${attempts} attempts to get around protected mode were refused; ${refusals.length} recorded in events.jsonl`);
      recordFigure({
        test: 'Protected mode on a real set-up',
        proves:
          'Provisioned by the script, the participant scores through the one sudo rule, and every attempt to write the score log or session, read the hidden data, replace the runner or scorer, use sudo otherwise or steer the root runner elsewhere is refused',
        faultsInjected: attempts,
        faultsSurvived: refused,
        entriesLost: 0,
      });
    });

    it('provisioning again during the session keeps it, and will not change its environment without --force', async () => {
      const before = (await client.status()).status;
      const same = provision();
      assert.equal(same.code, 0, same.out);
      const copy = fs.mkdtempSync(path.join(sshd.dir, 'env-'));
      try {
        fs.cpSync(ENVIRONMENT, path.join(copy, ENV_ID), { recursive: true });
        fs.appendFileSync(path.join(copy, ENV_ID, 'instructions.md'), '\nA changed rule.\n');
        const changed = spawnSync('bash', [SCRIPT, '--environment', path.join(copy, ENV_ID), '--participant', user, '--scoring-user', SCORER], {
          encoding: 'utf8',
        });
        assert.equal(changed.status, 1);
        assert.match(changed.stderr, /a session has started with the installed copy of "protected-demo".*pass --force/);
        const manifest = JSON.parse(fs.readFileSync(path.join(ENVIRONMENT, 'manifest.json'), 'utf8')) as { id: string };
        fs.cpSync(ENVIRONMENT, path.join(copy, 'other-env'), { recursive: true });
        fs.writeFileSync(path.join(copy, 'other-env', 'manifest.json'), JSON.stringify({ ...manifest, id: 'other-env' }));
        const other = spawnSync('bash', [SCRIPT, '--environment', path.join(copy, 'other-env'), '--participant', user, '--scoring-user', SCORER], {
          encoding: 'utf8',
        });
        assert.equal(other.status, 1);
        assert.match(other.stderr, /a session for "protected-demo" has started on this VM .* it cannot switch to "other-env"/);
      } finally {
        fs.rmSync(copy, { recursive: true, force: true });
      }
      const after = (await client.status()).status;
      assert.equal(after.started_at, before.started_at);
      assert.equal(after.deadline, before.deadline);
      assert.equal(after.entries, before.entries);
      assert.equal(after.log_intact, true);
      assert.doesNotMatch(fs.readFileSync(path.join(HOME, 'environments', ENV_ID, 'instructions.md'), 'utf8'), /A changed rule/);
    });

    it("a refusal says what is wrong: the client reports the runner's own message", async () => {
      const err = await client.pause().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof RunnerCommandError, String(err));
      assert.equal(err.runnerError.code, 'refused');
      assert.match(err.message, /does not allow pauses/);
    });
  });
});
