// `prepare --metr-family` for real: src/organiser/prepare.ts over a private sshd, as an administrator with a
// real sudo rule, setting a METR family up (machine.py as root: agent, protected, /protected, start once),
// installing it as a protected environment whose scoring user runs the family's intermediate score as root
// through one sudo rule, measuring the starting score through the installed runner, and then a participant
// (`agent`, through the runner's sudo rule) starting a session and scoring. Claims the machine's protected
// set-up as the other prepare tests do, and removes everything afterwards.

import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SshTarget } from '../../src/core/ssh/sshTarget';
import { type PrepareOptions, prepareVm } from '../../src/organiser/prepare';
import { prepareCommand } from '../../src/organiser/prepareCommand';
import { claimMachine, INSTALLED_RUNNER, type PrepareMachine, removeUser, userExists } from '../support/prepareMachine';
import { REPO_ROOT } from '../support/runner';
import { loginUser, type Sshd, startSshd, TEST_USER } from '../support/sshd';

const FAMILIES = path.join(REPO_ROOT, 'test', 'fixtures', 'metr');
// Built at run time so that this file's compiled copy (in /tmp, readable by anyone) does not hold it.
const TOKEN = ['rbt', 'secret', '7f3a9c'].join('-');

describe('prepare --metr-family: a METR family installed as a protected environment and scored by the participant', function () {
  this.timeout(300_000);
  let machine: PrepareMachine;
  let sshd: Sshd;
  let work = '';
  let participantHome = '';
  const hadAgent = userExists('agent');

  const options = (extra: Partial<PrepareOptions> = {}): PrepareOptions => ({
    admin: {
      host: sshd.host,
      port: sshd.port,
      user: machine.admin,
      identityFiles: [sshd.clientKeyPath],
      agent: false,
      knownHostsFiles: [],
      hostKeyFingerprint: sshd.hostFingerprint,
    },
    participant: 'agent',
    environmentDir: '',
    metr: { familyDir: path.join(FAMILIES, 'protected_counter'), task: 'main', referenceScore: 1, familyRoot: path.join(work, 'root') },
    scoringUser: machine.scorer,
    participantPublicKey: fs.readFileSync(`${sshd.clientKeyPath}.pub`, 'utf8').trim(),
    profilePath: path.join(work, 'agent.json'),
    ...extra,
  });

  async function asAgent(command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const t = new SshTarget({
      host: sshd.host,
      port: sshd.port,
      user: 'agent',
      identityFiles: [sshd.clientKeyPath],
      agent: false,
      knownHostsFiles: [],
      pinnedFingerprint: sshd.hostFingerprint,
    });
    try {
      await t.connect();
      return await t.exec(command);
    } finally {
      t.dispose();
    }
  }

  before(async function () {
    if (hadAgent || fs.existsSync('/protected')) throw new Error('this machine already has a user "agent" or /protected that this test did not make');
    ({ home: participantHome } = loginUser());
    const claimed = await claimMachine(TEST_USER, 'test/system/metrPrepareVm.system.test.ts');
    if (typeof claimed === 'string') {
      console.log(`      skipped: ${claimed}`);
      this.skip();
    }
    machine = claimed as PrepareMachine;
    machine.wipe(participantHome);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rbt-metr-vm-'));
    sshd = await startSshd();
  });
  after(async function () {
    if (!machine) return;
    await sshd?.stop();
    const problems = machine.release(participantHome);
    fs.rmSync('/etc/sudoers.d/rebench-metr', { force: true });
    fs.rmSync('/usr/local/lib/rebench-metr', { recursive: true, force: true });
    if (!hadAgent) {
      removeUser('agent');
      spawnSync('groupdel', ['protected']);
      fs.rmSync('/protected', { recursive: true, force: true });
      fs.rmSync('/home/agent', { recursive: true, force: true });
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
    assert.deepEqual(problems, []);
  });

  it('refuses bad METR arguments with what to do', async () => {
    const io = { out: () => undefined, err: (l: string) => errors.push(l) };
    const errors: string[] = [];
    assert.equal(await prepareCommand(['--host', 'h', '--admin', 'a', '--participant', 'agent', '--metr-family', 'x'], io), 2);
    assert.match(errors.join('\n'), /--task is required \(the task of the METR family to run\)/);
    errors.length = 0;
    assert.equal(await prepareCommand(['--host', 'h', '--admin', 'a', '--participant', 'agent', '--environment', 'e', '--task', 't'], io), 2);
    assert.match(errors.join('\n'), /--task is for a METR task family: give --metr-family DIR too/);
    errors.length = 0;
    assert.equal(
      await prepareCommand(['--host', 'h', '--admin', 'a', '--participant', 'agent', '--metr-family', 'x', '--task', 't', '--direction', 'up'], io),
      2,
    );
    assert.match(errors.join('\n'), /--direction must be higher or lower/);
    await assert.rejects(prepareVm(options({ participant: TEST_USER })), /run by the participant's login "agent"/);
  });

  it('prepares the family, measures the starting score through the installed runner, and a second run starts nothing again', async () => {
    const progress: string[] = [];
    const first = await prepareVm({ ...options(), onProgress: (p) => progress.push(`[${p.step}] ${p.message}`) });
    assert.equal(first.environmentId, 'metr-protected-counter-main');
    assert.equal(first.startingScore?.measured, 10);
    assert.match(progress.join('\n'), /Scoring: lower is better, the best score counts/);
    assert.ok(fs.existsSync(INSTALLED_RUNNER));
    const rule = fs.readFileSync('/etc/sudoers.d/rebench-metr', 'utf8');
    assert.match(
      rule,
      new RegExp(
        `^${machine.scorer} ALL=\\(root\\) NOPASSWD: \\S+ -B /usr/local/lib/rebench-metr/machine\\.py --state-dir /etc/rebench/metr call --method intermediate_score --timeout 1185 --runner-result \\*$`,
        'm',
      ),
    );
    assert.equal(fs.readFileSync('/protected/start-runs.log', 'utf8').split('\n').filter(Boolean).length, 1);

    const second = await prepareVm(options());
    assert.deepEqual(second.changed, [], `changed on the second run: ${second.changed.join('; ')}`);
    assert.equal(fs.readFileSync('/protected/start-runs.log', 'utf8').split('\n').filter(Boolean).length, 1, 'start(t) ran again');
  });

  it('the participant starts the session and scores through the family: a new score, a stale run as no score', async () => {
    const runner = `sudo -n ${INSTALLED_RUNNER} --json`;
    const start = await asAgent(`${runner} start`);
    assert.equal(start.code, 0, start.stdout + start.stderr);
    assert.equal((await asAgent('echo 4 > /home/agent/solution/value.txt')).code, 0);
    const scored = await asAgent(`${runner} score --follow`);
    assert.equal(scored.code, 0, scored.stdout + scored.stderr);
    const events = scored.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; text?: string; entry?: { score: number | null; message: string; job_id: string } });
    const entry = events.find((e) => e.type === 'entry')?.entry;
    assert.equal(entry?.score, 4, scored.stdout);
    assert.equal(entry?.message, 'value 4.0');
    assert.match(
      events
        .filter((e) => e.type === 'output')
        .map((e) => e.text)
        .join(''),
      /scoring as \d+ in group \d+, mode log/,
    );
    const details = path.join('/etc/rebench/metr/details', `${entry?.job_id}.json`);
    assert.equal((fs.statSync(details).mode & 0o777).toString(8), '600');
    assert.match(fs.readFileSync(details, 'utf8'), /only-for-organisers/);
    assert.doesNotMatch(scored.stdout, /only-for-organisers/);
    assert.notEqual((await asAgent(`cat ${details}`)).code, 0);

    assert.equal((await asAgent('echo silent > /home/agent/solution/mode.txt')).code, 0);
    const stale = await asAgent(`${runner} score --follow`);
    const staleEntry = stale.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; entry?: { score: number | null; message: string } })
      .find((e) => e.type === 'entry')?.entry;
    assert.equal(staleEntry?.score, null);
    assert.match(staleEntry?.message ?? '', /added no row to \/protected\/score\.log/);
    const status = JSON.parse((await asAgent(`${runner} status`)).stdout) as { counted: { score: number } };
    assert.equal(status.counted.score, 4);
  });

  it("ending the session records METR's aggregate_scores beside our counted score, where the participant cannot change it", async () => {
    const runner = `sudo -n ${INSTALLED_RUNNER} --json`;
    const ended = await asAgent(`${runner} end --yes`);
    assert.equal(ended.code, 0, ended.stdout + ended.stderr);
    // Recorded by a process of its own once the session has ended; `aggregate` returns the record (or records it).
    let status: { counted: { score: number } | null; aggregate: { score: number | null; entries: number; message: string } | null } = {
      counted: null,
      aggregate: null,
    };
    for (let i = 0; i < 100 && !status.aggregate; i++) {
      status = JSON.parse((await asAgent(`${runner} status`)).stdout) as typeof status;
      if (!status.aggregate) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(status.aggregate, 'no aggregate was recorded after the end');
    // METR's log holds what intermediate_score returned for each run: 4, then the stale row (4 again); min is 4.
    assert.deepEqual([status.aggregate.score, status.aggregate.entries], [4, 2], status.aggregate.message);
    assert.equal(status.counted?.score, 4, 'ours stays the counted score');
    const again = JSON.parse((await asAgent(`${runner} aggregate`)).stdout) as { aggregate: { computed_at: string } };
    assert.ok(again.aggregate.computed_at, 'recorded once and returned as recorded');
    assert.equal(fs.statSync('/etc/rebench/state/aggregate.json').uid, 0);
    assert.notEqual((await asAgent('echo \'{"score": 0}\' > /etc/rebench/state/aggregate.json')).code, 0, 'the participant changed the aggregate');
    assert.notEqual((await asAgent('rm -f /etc/rebench/state/aggregate.json')).code, 0, 'the participant removed the aggregate');
    assert.ok(fs.existsSync('/etc/rebench/state/aggregate.json'));
    const events = fs.readFileSync('/etc/rebench/state/events.jsonl', 'utf8');
    assert.equal(events.split('\n').filter((l) => l.includes('"event": "aggregate"')).length, 1);
  });

  it('a family with secrets, replaced with --force: scored through the runner, the token nowhere the participant can read', async () => {
    const secrets = path.join(work, 'study.env');
    fs.writeFileSync(secrets, `RBT_API_TOKEN=${TOKEN}\nRBT_API_ENDPOINT=https://api.example.org\nRBT_HOLD_S=3\n`, { mode: 0o600 });
    const secretsOptions = options({
      force: true,
      metr: {
        familyDir: path.join(FAMILIES, 'needs_secrets'),
        task: 'main',
        secretsFile: secrets,
        direction: 'higher',
        referenceScore: 2,
        familyRoot: path.join(work, 'secrets-root'),
      },
    });
    // The session of the first family has started: switching is refused before the new family's set-up runs.
    await assert.rejects(prepareVm(secretsOptions), /Nothing was changed: a session for "metr-protected-counter-main" has started on this VM/);
    assert.match(fs.readFileSync('/etc/rebench/metr/state.json', 'utf8'), /"family": "protected_counter"/);
    fs.rmSync('/etc/rebench/state', { recursive: true, force: true }); // the organiser archives the finished session
    const progress: string[] = [];
    const r = await prepareVm({
      ...options({
        force: true,
        metr: {
          familyDir: path.join(FAMILIES, 'needs_secrets'),
          task: 'main',
          secretsFile: secrets,
          direction: 'higher',
          referenceScore: 2,
          familyRoot: path.join(work, 'secrets-root'),
        },
      }),
      onProgress: (p) => progress.push(p.message),
    });
    assert.equal(r.environmentId, 'metr-needs-secrets-main');
    assert.equal(r.startingScore?.measured, 1);
    assert.doesNotMatch(progress.join('\n'), new RegExp(TOKEN));

    const runner = `sudo -n ${INSTALLED_RUNNER} --json`;
    assert.equal((await asAgent(`${runner} start`)).code, 0);
    // While the family holds the token (its child sleeps 3 s), the participant looks for it in every process.
    const scoring = asAgent(`${runner} score --follow`);
    let holders = '';
    for (let i = 0; i < 80 && !holders; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      holders = spawnSync('sh', ['-c', `grep -l -a '${TOKEN}' /proc/[0-9]*/environ 2>/dev/null`], { encoding: 'utf8' }).stdout.trim();
    }
    assert.ok(holders, 'no process held the token while scoring ran: the check below would prove nothing');
    const look = await asAgent(`grep -l -a '${TOKEN}' /proc/[0-9]*/environ 2>/dev/null; echo done`);
    assert.equal(look.stdout.trim(), 'done', `the participant found the token in: ${look.stdout}`);
    const scored = await scoring;
    assert.equal(scored.code, 0, scored.stdout + scored.stderr);
    assert.doesNotMatch(scored.stdout + scored.stderr, new RegExp(TOKEN));
    const entry = scored.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; entry?: { score: number | null; job_id: string } })
      .find((e) => e.type === 'entry')?.entry;
    assert.equal(entry?.score, 1);
    // The runner's files the participant could open by name, and everything under the state folder.
    const files = [
      'events.jsonl',
      'score.log.jsonl',
      'session.json',
      `jobs/${entry?.job_id}/output.log`,
      `jobs/${entry?.job_id}/job.json`,
      `jobs/${entry?.job_id}/entry.json`,
    ].map((f) => `/etc/rebench/state/${f}`);
    const readable = await asAgent(`for f in ${files.join(' ')}; do cat "$f" 2>/dev/null; done; echo done`);
    assert.doesNotMatch(readable.stdout, new RegExp(TOKEN));
    assert.equal(
      spawnSync('grep', ['-r', '-l', TOKEN, '/etc/rebench/state', '/etc/rebench/environments']).stdout.toString(),
      '',
      "the token is in the runner's files",
    );
    assert.notEqual((await asAgent('cat /etc/rebench/metr/secrets.env')).code, 0);
  });

  it('an end-scoring family: an answer of another form is refused, a valid one is scored once as the final entry and ends the session', async () => {
    fs.rmSync('/etc/rebench/state', { recursive: true, force: true }); // the organiser archives the finished session
    const end = (task: string) =>
      options({
        force: true,
        metr: {
          familyDir: path.join(FAMILIES, 'end_answer'),
          task,
          startingScore: 0,
          referenceScore: 1,
          answerPattern: task === 'sum' ? '[0-9]+' : undefined,
          familyRoot: path.join(work, `end-root-${task}`),
        },
      });
    await assert.rejects(
      prepareVm(
        options({
          force: true,
          metr: { familyDir: path.join(FAMILIES, 'end_answer'), task: 'sum', referenceScore: 1, familyRoot: path.join(work, 'end-root-sum') },
        }),
      ),
      /give the score a trivial answer gets with --starting-score/,
    );
    const r = await prepareVm(end('sum'));
    assert.equal(r.environmentId, 'metr-end-answer-sum');
    const manifest = JSON.parse(fs.readFileSync('/etc/rebench/environments/metr-end-answer-sum/manifest.json', 'utf8')) as {
      scoring: { submit: { format: string; pattern: string }; aggregate_command?: unknown };
    };
    assert.deepEqual(manifest.scoring.submit, { format: 'the sum as a whole number, digits only (e.g. `123`).', pattern: '[0-9]+' });
    assert.equal(manifest.scoring.aggregate_command, undefined);
    assert.match(fs.readFileSync('/etc/sudoers.d/rebench-metr', 'utf8'), /call --method score --timeout \d+ --runner-result \*$/m);

    const runner = `sudo -n ${INSTALLED_RUNNER} --json`;
    assert.equal((await asAgent(`${runner} start`)).code, 0);
    const score = await asAgent(`${runner} score --follow`);
    assert.match(score.stdout, /submit your answer when you are done/);
    const wrong = await asAgent(`${runner} submit --answer forty-nine --yes --follow`);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stdout, /does not have the form the instructions ask for: the sum as a whole number/);
    assert.equal((JSON.parse((await asAgent(`${runner} status`)).stdout) as { state: string }).state, 'running', 'a refused answer ended the session');

    const submitted = await asAgent(`${runner} submit --answer 49 --yes --follow`);
    assert.equal(submitted.code, 0, submitted.stdout + submitted.stderr);
    const lines = submitted.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type?: string; text?: string; entry?: { kind: string; score: number | null; job_id: string; manual?: boolean } });
    const entry = lines.find((l) => l.type === 'entry')?.entry;
    assert.deepEqual([entry?.kind, entry?.score, entry?.manual], ['submit', 1, undefined], submitted.stdout);
    assert.match(lines.map((l) => l.text ?? '').join(''), /checking the submitted answer \(2 characters\)/);
    const status = JSON.parse((await asAgent(`${runner} status`)).stdout) as { state: string; counted: { score: number; normalized: number } };
    assert.deepEqual([status.state, status.counted.score, status.counted.normalized], ['ended', 1, 1]);
    const records = JSON.parse((await asAgent(`${runner} records`)).stdout) as { records: Array<{ kind: string; answer?: string; job_id?: string }> };
    assert.deepEqual(
      records.records.filter((x) => x.kind === 'submission').map((x) => [x.answer, x.job_id]),
      [['49', entry?.job_id]],
    );
    assert.equal(fs.statSync('/etc/rebench/state/records.jsonl').uid, 0);
    assert.notEqual((await asAgent('echo x >> /etc/rebench/state/records.jsonl')).code, 0);
    assert.notEqual((await asAgent(`${runner} submit --answer 48 --yes`)).code, 0, 'a second answer was taken');
  });

  it('an end-scoring family whose score(t, submission) returns None: the answer is scored by a person later, never 0', async () => {
    fs.rmSync('/etc/rebench/state', { recursive: true, force: true });
    const r = await prepareVm(
      options({
        force: true,
        metr: {
          familyDir: path.join(FAMILIES, 'end_answer'),
          task: 'essay',
          startingScore: 0,
          referenceScore: 1,
          familyRoot: path.join(work, 'end-root-essay'),
        },
      }),
    );
    assert.equal(r.environmentId, 'metr-end-answer-essay');
    const runner = `sudo -n ${INSTALLED_RUNNER} --json`;
    assert.equal((await asAgent(`${runner} start`)).code, 0);
    const answer = 'Scores must never default to 0. A 0 can be a top score. No score is no score.';
    const submitted = await asAgent(`${runner} submit --request '${JSON.stringify({ answer })}' --yes --follow`);
    assert.equal(submitted.code, 0, submitted.stdout + submitted.stderr);
    const entry = submitted.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type?: string; entry?: { score: number | null; manual?: boolean; message: string } })
      .find((l) => l.type === 'entry')?.entry;
    assert.deepEqual([entry?.score, entry?.manual], [null, true], submitted.stdout);
    assert.match(entry?.message ?? '', /scored by a person later/);
    const status = JSON.parse((await asAgent(`${runner} status`)).stdout) as { state: string; counted: unknown };
    assert.deepEqual([status.state, status.counted], ['ended', null]);
  });
});
