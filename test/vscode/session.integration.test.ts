// The participant's flow driven through the real extension's commands inside a real VS Code, against a
// private OpenSSH server on loopback: connect, pre-flight, start, instructions, score, history,
// export, reload and restore (with a scoring job running), end.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ExtensionApi } from '../../src/extension';
import type { Sshd } from '../support/sshd';
import { closeParticipantVm, participantVm, type ParticipantVm, type SshChoice } from '../support/vscodeVm';
import { until } from '../support/wait';

describe('A participant session in a real VS Code, over SSH', function () {
  this.timeout(120_000);
  let vm: ParticipantVm;
  let sshd: Sshd;
  let api: ExtensionApi;
  let choice: SshChoice;
  let solutionDir: string;

  const writeSolution = (delayS: number, score: string) => {
    fs.writeFileSync(path.join(solutionDir, 'delay_s'), String(delayS));
    fs.writeFileSync(path.join(solutionDir, 'score.txt'), score);
  };

  before(async () => {
    vm = await participantVm();
    ({ api, sshd, choice } = vm);
  });

  after(() => closeParticipantVm(vm));

  it('refuses a host whose key does not match the pinned fingerprint', async () => {
    const wrong = { ...choice, fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('rebench.connect', wrong)), /host key/i);
    assert.equal(api.controller.connected, false);
  });

  it('connects with the pinned host key and sets up the environment on the VM', async () => {
    assert.equal(await vscode.commands.executeCommand('rebench.connect', choice), true);
    const snapshot = api.controller.snapshot();
    assert.equal(snapshot.connection.kind, 'connected');
    assert.equal(snapshot.environment?.id, 'slow-scorer');
    assert.equal(snapshot.session?.state, 'not_started');
    assert.match(snapshot.scoreDisabledReason ?? '', /Start the session/);
    solutionDir = snapshot.session!.solutionDir;
    assert.equal(solutionDir, path.join(sshd.home, 'rebench', 'slow-scorer'));
    assert.ok(fs.existsSync(path.join(solutionDir, 'score.txt')), 'the starting solution was copied to the VM');
  });

  it('refuses the instructions before the session starts', async () => {
    // (Run from the palette, the failure is shown and the command settles; the action itself rejects.)
    await assert.rejects(api.actions.invoke('showInstructions', 'internal'), /start/i);
  });

  it('runs the pre-flight check, then starts the clock on the VM', async () => {
    assert.equal(await vscode.commands.executeCommand('rebench.startSession', { confirmed: true }), true);
    const checks = api.controller.lastPreflight;
    assert.deepEqual(
      checks.map((c) => c.name),
      ['Connection', 'Runner', 'Environment', 'GPU', 'Disk', 'VM clock'],
    );
    assert.deepEqual(
      checks.filter((c) => c.result === 'fail'),
      [],
    );
    assert.match(checks[0]!.detail, new RegExp(sshd.hostFingerprint.replace(/[+/]/g, '\\$&')));
    const snapshot = api.controller.snapshot();
    assert.equal(snapshot.session?.state, 'running');
    const left = snapshot.session!.secondsLeft!;
    assert.ok(left > 3590 && left <= 3600, `seconds left ${left}`);
    assert.equal(snapshot.scoreDisabledReason, null);
  });

  it('shows the instructions once the session runs', async () => {
    const shown = await vscode.commands.executeCommand<{ title: string; markdown: string }>('rebench.showInstructions');
    assert.ok(shown.markdown.length > 20);
  });

  it('scores the solution and adds the entry to the history', async () => {
    writeSolution(1, '7.5');
    const entry = await vscode.commands.executeCommand<{ score: number | null; index: number }>('rebench.scoreNow');
    assert.equal(entry.score, 7.5);
    assert.equal(entry.index, 0);
    const snapshot = api.controller.snapshot();
    assert.equal(snapshot.entries.length, 1);
    assert.equal(snapshot.countedIndex, 0);
    assert.equal(snapshot.job, null);
    assert.equal(snapshot.logIntact, true);
  });

  it('records a failed run as "no score", never as 0', async () => {
    writeSolution(0, 'nan');
    const entry = await vscode.commands.executeCommand<{ score: number | null }>('rebench.scoreNow');
    assert.equal(entry.score, null);
    const snapshot = api.controller.snapshot();
    assert.equal(snapshot.entries.length, 2);
    assert.equal(snapshot.countedIndex, 0, 'the best score still counts');
  });

  it('exports the score log as JSON and as METR CSV', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-export-'));
    const json = vscode.Uri.file(path.join(dir, 'log.json'));
    const csv = vscode.Uri.file(path.join(dir, 'log.csv'));
    await vscode.commands.executeCommand('rebench.exportLog', 'json', json);
    await vscode.commands.executeCommand('rebench.exportLog', 'metr-csv', csv);
    const entries = JSON.parse(fs.readFileSync(json.fsPath, 'utf8')) as { score: number | null; hash: string }[];
    assert.deepEqual(
      entries.map((e) => e.score),
      [7.5, null],
    );
    const lines = fs.readFileSync(csv.fsPath, 'utf8').trim().split(/\r?\n/);
    assert.equal(lines[0], 'timestamp,score,message,details');
    assert.equal(lines.length, 3);
    const verdict = await vscode.commands.executeCommand<{ intact: boolean }>('rebench.verifyLog');
    assert.equal(verdict.intact, true);
  });

  it('after a window reload, reconnects to the last VM and re-attaches the running scoring job', async () => {
    writeSolution(3, '9');
    const first = api.actions.invoke('score', 'command').catch((e: unknown) => e);
    const jobId = await until('the scoring job to start', () => api.controller.current?.job?.jobId);
    // What a reload does to the extension: the session object and its connection go away.
    await api.controller.disconnect(false);
    assert.ok((await first) instanceof Error, 'the interrupted Score now reports that it lost the job');
    await api.controller.restore();
    assert.equal(api.controller.connected, true);
    const restored = api.controller.snapshot();
    assert.equal(restored.session?.state, 'running');
    assert.equal(restored.entries.length, 2, 'the history is back');
    const entry = await until('the re-attached job to report its entry', () => api.controller.current?.entries.find((e) => e.job_id === jobId), 20_000);
    assert.equal(entry.score, 9);
    assert.equal(api.controller.snapshot().countedIndex, entry.index, '9 beats 7.5 (higher is better)');
  });

  it('ends the session and closes scoring', async () => {
    assert.equal(await vscode.commands.executeCommand('rebench.endSession', { confirmed: true }), true);
    const snapshot = api.controller.snapshot();
    assert.equal(snapshot.session?.state, 'ended');
    assert.match(snapshot.scoreDisabledReason ?? '', /ended/);
    assert.equal(snapshot.entries.length, 3, 'ending adds no entry where the best score counts');
  });
});
