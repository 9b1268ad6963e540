// Hidden scores in protected mode, over real SSH: provision-protected.sh installs an environment whose scorer
// gives a validation score and a hidden test score (scoring.visible "validation"; then, for the second half,
// the organiser's copy of the manifest is switched to "none", where the validation score is hidden too). The
// participant scores through their one sudo rule and then looks for the hidden values everywhere they can: the
// runner's replies, its channel, the state files by name, the job folders, the environment's protected/ folder,
// and the client's own log. The organiser collects over the administrator's login and gets both scores.

import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunnerClient } from '../../src/core/runnerClient';
import type { ScoreLogEntry } from '../../src/core/runnerProtocol';
import { SshTarget } from '../../src/core/ssh/sshTarget';
import { main } from '../../src/organiser/cli';
import { collect } from '../../src/organiser/collect';
import type { HostSpec } from '../../src/organiser/hosts';
import { RESULT_COLUMNS, resultRow } from '../../src/organiser/results';
import { claimMachine, type PrepareMachine, PROTECTED_HOME } from '../support/prepareMachine';
import { FIXTURE_ENVIRONMENTS, REPO_ROOT } from '../support/runner';
import { loginUser, startSshd, TEST_USER, type Sshd } from '../support/sshd';

const SCRIPT = path.join(REPO_ROOT, 'environments', 'provision-protected.sh');
const ENV_ID = 'hidden-scorer';
const STATE = path.join(PROTECTED_HOME, 'state');
const MANIFEST = path.join(PROTECTED_HOME, 'environments', ENV_ID, 'manifest.json');
const RUNNER = 'sudo -n /usr/local/bin/rebench-runner';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** The values the participant must never see: the hidden score of score.txt 4 (4 + the held-out offset), and in
 * the second half, where every score is hidden, the validation score 6 and the scorer's message that holds it. */
const HIDDEN_TEST_SCORE = '4.123456';
const HIDDEN_IN_NONE = ['validation score 6', '6.123456'];

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath, d.name));
}

describe('Hidden scores on a protected VM: the participant cannot read them anywhere, the organiser collects them', function () {
  this.timeout(300_000);
  let machine: PrepareMachine | undefined;
  let sshd: Sshd;
  let participant: SshTarget;
  let client: RunnerClient;
  let user = '';
  let home = '';
  let spec: HostSpec;
  const clientLog: string[] = [];
  const logger = {
    info: (m: string) => clientLog.push(m),
    warn: (m: string) => clientLog.push(m),
    error: (m: string) => clientLog.push(m),
  };
  const entries: ScoreLogEntry[] = [];
  const channelEvents: string[] = [];

  /** Everything the participant can read of the session, as the participant: the runner's replies (one-shot and
   * on its channel), every file of the state folder and the environment that their login can open by its name,
   * and what the client logged. */
  async function whatTheParticipantCanRead(): Promise<string> {
    const texts: string[] = [];
    for (const args of ['status', 'log', 'verify', 'records', 'export --format jsonl', 'export --format metr-csv']) {
      const r = await participant.exec(`${RUNNER} ${args} --json`);
      texts.push(r.stdout, r.stderr);
    }
    const serve = await participant.exec(
      `printf '%s\\n' '{"id":1,"command":"log","args":{}}' '{"id":2,"command":"status","args":{}}' '{"id":3,"command":"hidden","args":{}}' | ${RUNNER} serve`,
    );
    texts.push(serve.stdout, serve.stderr);
    const paths = [...filesUnder(STATE), ...filesUnder(path.join(PROTECTED_HOME, 'environments', ENV_ID))];
    // Each file by its name, as the participant: what they can open is added to what they can read.
    const cat = await participant.exec(`for f in ${paths.map((p) => `'${p}'`).join(' ')}; do cat "$f" 2>/dev/null; done; true`);
    texts.push(cat.stdout);
    texts.push(clientLog.join('\n'), JSON.stringify(entries), channelEvents.join('\n'));
    return texts.join('\n');
  }

  before(async function () {
    if (!isRoot) {
      console.log('      skipped: it provisions the machine and must run as root');
      this.skip();
    }
    ({ user, home } = loginUser());
    const claimed = await claimMachine(TEST_USER, 'test/system/hiddenScores.system.test.ts');
    if (typeof claimed === 'string') {
      console.log(`      skipped: ${claimed}`);
      this.skip();
    }
    machine = claimed;
    fs.rmSync(path.join(home, 'solution'), { recursive: true, force: true });
    const r = spawnSync('bash', [SCRIPT, '--environment', path.join(FIXTURE_ENVIRONMENTS, ENV_ID), '--participant', user, '--scoring-user', machine.scorer], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    sshd = await startSshd();
    participant = new SshTarget({
      host: sshd.host,
      port: sshd.port,
      user,
      identityFiles: [sshd.clientKeyPath],
      pinnedFingerprint: sshd.hostFingerprint,
      knownHostsFiles: [],
      agent: false,
      logger,
    });
    await participant.connect();
    client = new RunnerClient({ target: participant, environmentId: ENV_ID, runnerSource: '', environmentSource: '', protectedMode: true, logger });
    client.onRunnerEvent((e) => channelEvents.push(JSON.stringify(e)));
    const status = await client.ensureRunnerSetUp();
    assert.equal(status.environment.visible, 'validation');
    await client.start();
    spec = {
      participant: 'ann',
      host: sshd.host,
      port: sshd.port,
      user,
      fingerprint: sshd.hostFingerprint,
      protectedMode: true,
      environment: ENV_ID,
      source: 'ann.json',
    };
  });

  after(async () => {
    client?.dispose();
    participant?.dispose();
    await sshd?.stop();
    if (machine) assert.deepEqual(machine.release(home), []);
  });

  it('validation: the participant sees the validation score; the hidden test score is in a root-only record', async () => {
    const entry = await client.score({ onOutput: (t) => clientLog.push(t) });
    entries.push(entry);
    assert.equal(entry.score, 4);
    assert.equal(entry.message, 'validation score 4');
    assert.deepEqual(Object.keys(entry.hidden ?? {}), ['sha256']);
    const record = path.join(STATE, 'hidden', `${entry.job_id}.json`);
    const st = fs.statSync(record);
    assert.deepEqual([st.uid, (st.mode & 0o777).toString(8), (fs.statSync(path.dirname(record)).mode & 0o777).toString(8)], [0, '600', '700']);
    assert.match(fs.readFileSync(record, 'utf8'), new RegExp(HIDDEN_TEST_SCORE.replace('.', '\\.')));
    const seen = await whatTheParticipantCanRead();
    assert.ok(seen.includes('validation score 4'), 'the search reads what the participant sees');
    assert.ok(!seen.includes(HIDDEN_TEST_SCORE), 'the hidden test score reached the participant');
  });

  it("the participant's sudo rule is refused the hidden scores, and the attempt is recorded", async () => {
    const r = await participant.exec(`${RUNNER} hidden --json`);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(
      JSON.parse(r.stdout).error.message,
      new RegExp(`Hidden scores are for the organiser; ${user} runs the runner through the participant's sudo rule`),
    );
    await assert.rejects(client.hidden(), /Hidden scores are for the organiser/);
    const refused = fs
      .readFileSync(path.join(STATE, 'events.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event === 'refused' && e.action === 'hidden');
    assert.ok(refused.length >= 2 && refused.every((e) => e.caller === user));
    for (const p of [
      path.join(STATE, 'hidden'),
      path.join(STATE, 'hidden', `${entries[0]!.job_id}.json`),
      path.join(PROTECTED_HOME, 'environments', ENV_ID, 'protected', 'held_out.json'),
    ]) {
      const read = await participant.exec(`cat '${p}' || ls '${p}'`);
      assert.notEqual(read.code, 0, `the participant read ${p}`);
      assert.match(read.stderr, /Permission denied/);
    }
  });

  it('none: where every score is hidden the participant learns only that the run scored', async () => {
    // The organiser's copy of the manifest switched to "none", standing in for a second VM.
    const manifest = JSON.parse(fs.readFileSync(MANIFEST, 'utf8'));
    manifest.scoring.visible = 'none';
    fs.writeFileSync(MANIFEST, JSON.stringify(manifest));
    fs.writeFileSync(path.join(home, 'solution', 'score.txt'), '6\n');
    const entry = await client.score({ onOutput: (t) => clientLog.push(t) });
    entries.push(entry);
    assert.equal(entry.score, null);
    assert.deepEqual(entry.hidden && { scored: entry.hidden.scored }, { scored: true });
    assert.match(entry.message, /^Scored\. The score is hidden from you/);
    const { status } = await client.status();
    assert.equal(status.counted?.index, 0, 'only the run whose score was shown can count for the participant');
    const seen = await whatTheParticipantCanRead();
    for (const value of [HIDDEN_TEST_SCORE, ...HIDDEN_IN_NONE]) assert.ok(!seen.includes(value), `${value} reached the participant`);
  });

  it("the organiser's collect over the administrator's login has both scores; over the participant's, a warning naming --admin", async () => {
    const options = { identityFiles: [sshd.clientKeyPath], agent: false as const, knownHostsFiles: [], archive: false };
    const [admin] = await collect([spec], { ...options, admin: machine!.admin });
    assert.ok(admin!.ok, admin!.error);
    assert.deepEqual(
      admin!.hidden?.hidden.map((h) => [h.index, h.score, h.intact]),
      [
        [0, 4.123456, true],
        [1, 6, true],
      ],
    );
    const row = resultRow(admin!);
    assert.equal(row.score_visibility, 'none');
    assert.equal(row.counted_score, 6, 'the hidden scores count: the best of 4.123456 and 6');
    assert.equal(row.visible_counted_score, 4);
    const [asParticipant] = await collect([spec], options);
    assert.ok(asParticipant!.ok, asParticipant!.error);
    assert.equal(asParticipant!.hidden, undefined);
    assert.match(asParticipant!.warnings.join(' '), /hidden scores of .* were not read .*give --admin USER/);
    assert.equal(resultRow(asParticipant!).counted_score, null, 'never a guess');
  });

  it('collect --admin on the command line writes both scores to results.csv and results.json, and the plot says the scores are hidden', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-hidden-collect-'));
    try {
      const profile = path.join(work, 'ann.json');
      fs.writeFileSync(
        profile,
        JSON.stringify({
          name: 'ann',
          host: sshd.host,
          port: sshd.port,
          user,
          host_key_fingerprint: sshd.hostFingerprint,
          environment: ENV_ID,
          identity_file: sshd.clientKeyPath,
          protected: true,
        }),
      );
      const out = path.join(work, 'out');
      const said: string[] = [];
      const io = { out: (l: string) => said.push(l), err: (l: string) => said.push(l) };
      assert.equal(
        await main(['collect', '--out', out, '--admin', machine!.admin, '-i', sshd.clientKeyPath, '--no-agent', '-q', profile], io),
        0,
        said.join('\n'),
      );
      const [header, line] = fs.readFileSync(path.join(out, 'results.csv'), 'utf8').split('\r\n');
      assert.deepEqual(header!.split(','), [...RESULT_COLUMNS]);
      const cells = line!.split(',');
      const at = (c: (typeof RESULT_COLUMNS)[number]) => cells[RESULT_COLUMNS.indexOf(c)];
      assert.deepEqual([at('counted_score'), at('counted_normalised'), at('score_visibility'), at('visible_counted_score')], ['6', '0.6', 'none', '4']);
      const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
      assert.deepEqual([json.rows[0].counted_score, json.rows[0].visible_counted_score], [6, 4]);
      assert.equal(json.environments[0].best_counted_normalised, 0.6);
      assert.match(fs.readFileSync(path.join(out, 'plot.svg'), 'utf8'), /hidden scores/);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
