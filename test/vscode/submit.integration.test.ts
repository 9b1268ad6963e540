// Submit Answer… inside a real VS Code over a private sshd, for an environment scored once at the end from the
// submitted answer (test/fixtures/environments/answer-check): an answer of another form is refused before it
// is sent, a valid one is scored once as the final entry and ends the session, and an answer a person scores
// later is shown as such, never as 0. The confirmations are given as the palette's dialogs would give them.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ScoreLogEntry } from '../../src/core/runnerProtocol';
import type { ExtensionApi } from '../../src/extension';
import type { ConnectionChoice } from '../../src/ui/targets';
import { resetUserHome, startSshd, type Sshd } from '../support/sshd';

const EXTENSION_ID = 'rebench-tools.rebench-session';

function records(sshd: Sshd): Array<Record<string, unknown>> {
  const file = path.join(sshd.home, '.rebench', 'state', 'records.jsonl');
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
}

describe('Submit Answer… in a real VS Code (end scoring)', function () {
  this.timeout(120_000);
  let sshd: Sshd;
  let api: ExtensionApi;
  let choice: ConnectionChoice;

  async function freshSession(): Promise<void> {
    await api.controller.disconnect(true);
    resetUserHome();
    assert.equal(await vscode.commands.executeCommand('rebench.connect', choice), true);
    assert.equal(await vscode.commands.executeCommand('rebench.startSession', { confirmed: true }), true);
  }

  before(async () => {
    const ext = vscode.extensions.getExtension<ExtensionApi>(EXTENSION_ID);
    assert.ok(ext, 'the extension is loaded');
    api = await ext.activate();
    await vscode.workspace
      .getConfiguration('rebench')
      .update('environmentsFolder', path.join(ext.extensionPath, 'test', 'fixtures', 'environments'), vscode.ConfigurationTarget.Global);
    sshd = await startSshd();
    choice = {
      kind: 'ssh',
      name: 'end-scoring test VM',
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      fingerprint: sshd.hostFingerprint,
      identityFile: sshd.clientKeyPath,
      environmentId: 'answer-check',
      protectedMode: false,
    };
    await freshSession();
  });

  after(async () => {
    await api?.controller.disconnect(true);
    await vscode.workspace.getConfiguration('rebench').update('environmentsFolder', undefined, vscode.ConfigurationTarget.Global);
    await sshd?.stop();
    resetUserHome();
  });

  it("offers the answer's form, and Score now is not offered where the answer is scored", async () => {
    const snap = api.controller.snapshot();
    assert.equal(snap.session?.state, 'running');
    assert.match(snap.environment?.submit?.format ?? '', /the sum as a whole number/);
    assert.equal(snap.environment?.submit?.pattern, '[0-9]+|essay: [\\s\\S]+');
    assert.equal(await vscode.commands.executeCommand('rebench.scoreNow'), undefined);
    assert.equal(api.controller.snapshot().entries.length, 0, 'Score now ran a scoring job');
  });

  it('refuses an answer of another form before sending it: nothing is recorded and the session goes on', async () => {
    await assert.rejects(
      Promise.resolve(vscode.commands.executeCommand('rebench.submitAnswer', { answer: 'forty-nine', confirmed: true })),
      /does not have the form the instructions ask for: the sum as a whole number/,
    );
    assert.equal(api.controller.snapshot().session?.state, 'running');
    assert.deepEqual(records(sshd), []);
  });

  it('scores a valid answer once as the final entry and ends the session; the VM records the answer', async () => {
    const entry = (await vscode.commands.executeCommand('rebench.submitAnswer', { answer: '49', confirmed: true })) as ScoreLogEntry;
    assert.deepEqual([entry.kind, entry.score, entry.counts], ['submit', 1, true]);
    const snap = api.controller.snapshot();
    assert.equal(snap.session?.state, 'ended');
    assert.equal(snap.countedIndex, entry.index);
    const submitted = records(sshd).filter((r) => r.kind === 'submission');
    assert.deepEqual(
      submitted.map((r) => [r.answer, r.job_id]),
      [['49', entry.job_id]],
    );
    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('rebench.submitAnswer', { answer: '48', confirmed: true })), /ended/);
  });

  it('an answer a person scores later is shown as such: no score yet, never 0', async () => {
    await freshSession();
    const entry = (await vscode.commands.executeCommand('rebench.submitAnswer', {
      answer: 'essay: a 0 on a log-time scale would beat the reference.',
      confirmed: true,
    })) as ScoreLogEntry;
    assert.deepEqual([entry.kind, entry.score, entry.manual], ['submit', null, true]);
    assert.match(entry.message, /scored by a person later/);
    const snap = api.controller.snapshot();
    assert.equal(snap.session?.state, 'ended');
    assert.equal(snap.countedIndex, null, 'an answer a person scores later is not a counted score');
  });
});
