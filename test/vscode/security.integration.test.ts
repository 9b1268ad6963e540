// Tampering with the score log, shown to the participant: inside a real VS Code, over a private sshd, the
// score log on the VM (unprotected mode: the participant's own ~/.rebench/state/score.log.jsonl) is
// edited, cut, reordered, padded and re-hashed by hand; "Check Score Log Integrity" and the session view's
// snapshot name the first bad line every time, and a restored log reads as intact again.
//
// That no passphrase reaches any log is tested in test/ui/secrets.ui.test.ts: the passphrase prompt is a
// VS Code input box, which only a browser driver can type into (an extension host's commands cannot set
// an input box's value; `type` goes to the focused text editor only).
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ScoreLogEntry } from '../../src/core/runnerProtocol';
import type { ExtensionApi } from '../../src/extension';
import { recordFigure } from '../support/figures';
import type { Sshd } from '../support/sshd';
import { closeParticipantVm, connectAndStart, participantVm, type ParticipantVm } from '../support/vscodeVm';
import { until } from '../support/wait';

describe('Score log tampering, as the participant sees it in a real VS Code', function () {
  this.timeout(120_000);
  let vm: ParticipantVm;
  let sshd: Sshd;
  let api: ExtensionApi;
  let logPath: string;
  let original: string;
  let tamperings = 0;
  let detected = 0;

  const lines = () => original.split('\n').filter(Boolean);
  const write = (kept: string[]) => fs.writeFileSync(logPath, kept.map((l) => `${l}\n`).join(''));

  /** Tampers with the log on the VM, then checks the verdict and the view's snapshot name `line`. */
  async function expectNamed(tampered: string[], line: number, reason: RegExp): Promise<void> {
    tamperings++;
    write(tampered);
    const verdict = await vscode.commands.executeCommand<{ intact: boolean; message: string }>('rebench.verifyLog');
    assert.equal(verdict.intact, false, 'the tampering went unnoticed');
    assert.match(verdict.message, new RegExp(`^The score log is NOT intact: line ${line}: `));
    assert.match(verdict.message, reason);
    const snapshot = api.controller.snapshot();
    assert.equal(snapshot.logIntact, false, 'the session view still shows the log as intact');
    assert.match(snapshot.logProblem ?? '', new RegExp(`^line ${line}: `), `the view names another problem: ${snapshot.logProblem}`);
    assert.match(snapshot.logProblem ?? '', reason);
    detected++;
    // Put the log back: the view must say it is intact again, so the next case starts clean.
    write(lines());
    await api.controller.current!.refresh();
    assert.equal(api.controller.snapshot().logIntact, true);
    assert.equal(api.controller.snapshot().logProblem, null);
  }

  before(async () => {
    vm = await participantVm({ choice: { name: 'tampering test VM' } });
    ({ api, sshd } = vm);
    const solution = await connectAndStart(vm);
    fs.writeFileSync(path.join(solution, 'delay_s'), '0');
    for (const score of ['7', '8', '9', '10']) {
      fs.writeFileSync(path.join(solution, 'score.txt'), score);
      // As a participant waits for Score now to be enabled again (the view refreshes after each entry).
      await until('Score now to be enabled', () => api.controller.snapshot().scoreDisabledReason === null);
      const entry = await vscode.commands.executeCommand<ScoreLogEntry | undefined>('rebench.scoreNow');
      assert.equal(entry?.score, Number(score));
    }
    logPath = path.join(sshd.home, '.rebench', 'state', 'score.log.jsonl');
    original = fs.readFileSync(logPath, 'utf8');
    assert.equal(lines().length, 4);
  });

  after(async () => {
    await closeParticipantVm(vm);
    recordFigure({
      test: 'Score log tampering shown in VS Code',
      proves:
        'Edited, re-hashed, deleted, reordered, inserted and cut score log lines, and a moved start time, are each reported with the first bad line, in the integrity check and in the session view',
      faultsInjected: tamperings,
      faultsSurvived: detected,
    });
  });

  it('an intact log reads as intact, with its entries counted', async () => {
    const verdict = await vscode.commands.executeCommand<{ intact: boolean; message: string }>('rebench.verifyLog');
    assert.deepEqual(verdict, { intact: true, message: 'The score log is intact: 4 entries, each chained to the one before.' });
    assert.equal(api.controller.snapshot().logIntact, true);
  });

  it('an edited score names its line', async () => {
    const edited = lines().map((l, i) => (i === 1 ? l.replace('"score":8.0', '"score":80.0') : l));
    assert.notEqual(edited[1], lines()[1], 'the edit changed the line');
    await expectNamed(edited, 1, /hash does not match its contents \(edited\?\)/);
  });

  it('an edited score with its hash recomputed names the line after it', async () => {
    // What a forger who read the docs does: recompute the entry's own hash (the runner's canonical JSON).
    const rehash =
      'import hashlib, json, sys\n' +
      'e = json.loads(sys.stdin.read()); e["score"] = 80.0; e.pop("hash")\n' +
      'c = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)\n' +
      'e["hash"] = hashlib.sha256(c(e).encode()).hexdigest(); print(c(e))';
    const forged = execFileSync('python3', ['-c', rehash], { input: lines()[1]!, encoding: 'utf8' }).trim();
    assert.match(forged, /"score":80\.0/);
    await expectNamed(
      lines().map((l, i) => (i === 1 ? forged : l)),
      2,
      /prev_hash does not match the hash of the entry before it/,
    );
  });

  it('a deleted line names the line where the gap shows', async () => {
    await expectNamed(
      lines().filter((_, i) => i !== 1),
      1,
      /index 2 where 1 was expected \(deleted, inserted or reordered\?\)/,
    );
  });

  it('reordered lines name the first one out of place', async () => {
    const l = lines();
    await expectNamed([l[0]!, l[2]!, l[1]!, l[3]!], 1, /index 2 where 1 was expected/);
  });

  it('an inserted line names itself', async () => {
    const l = lines();
    await expectNamed([l[0]!, l[1]!, l[0]!, l[2]!, l[3]!], 2, /index 0 where 2 was expected/);
  });

  it('a damaged last line (cut in the middle) names it', async () => {
    const l = lines();
    tamperings++;
    fs.writeFileSync(logPath, `${l.slice(0, 3).join('\n')}\n${l[3]!.slice(0, 40)}`);
    const verdict = await vscode.commands.executeCommand<{ intact: boolean; message: string }>('rebench.verifyLog');
    assert.equal(verdict.intact, false);
    assert.match(verdict.message, /line 3: the last line is incomplete/);
    assert.match(api.controller.snapshot().logProblem ?? '', /^line 3: the last line is incomplete/);
    detected++;
    write(lines());
    await api.controller.current!.refresh();
    assert.equal(api.controller.snapshot().logIntact, true);
  });

  it('a moved start time breaks the chain at line 0', async () => {
    const sessionPath = path.join(sshd.home, '.rebench', 'state', 'session.json');
    const session = fs.readFileSync(sessionPath, 'utf8');
    const parsed = JSON.parse(session) as { started_at: string };
    const earlier = new Date(Date.parse(parsed.started_at) - 3600_000).toISOString();
    tamperings++;
    fs.writeFileSync(sessionPath, session.replace(parsed.started_at, earlier));
    try {
      const verdict = await vscode.commands.executeCommand<{ intact: boolean; message: string }>('rebench.verifyLog');
      assert.equal(verdict.intact, false);
      assert.match(verdict.message, /line 0: prev_hash does not match the session's start time \(was the start time changed\?\)/);
      assert.match(api.controller.snapshot().logProblem ?? '', /^line 0: prev_hash does not match the session's start time/);
      detected++;
    } finally {
      fs.writeFileSync(sessionPath, session);
    }
    await api.controller.current!.refresh();
    assert.equal(api.controller.snapshot().logIntact, true);
  });
});
