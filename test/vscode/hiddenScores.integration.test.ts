// A session whose scores are hidden from the participant (scoring.visible "none", as METR's
// visible_to_agent: false), in a real VS Code over SSH: each run shows that it happened and whether it
// scored, never the value; nothing counts for the participant; the exports, the view's snapshot and the
// extension's log hold no hidden value. (Unprotected mode: the runner home is the participant's, so this is
// what the extension shows, not what a participant who looks in ~/.rebench could read: see
// environments/README.md, "Hidden scores".)
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ExtensionApi } from '../../src/extension';
import type { ScoreLogEntry } from '../../src/core/runnerProtocol';
import type { ConnectionChoice } from '../../src/ui/targets';
import { HIDDEN_ENV_ID, hiddenEnvironments } from '../support/hiddenEnvironment';
import { resetUserHome, startSshd, type Sshd } from '../support/sshd';
import { until } from '../support/wait';

const EXTENSION_ID = 'rebench-tools.rebench-session';
/** The score the scorer computes, which must never reach the participant, and its message. */
const HIDDEN_VALUE = '4.7319';
const HIDDEN_MESSAGE = `validation score ${HIDDEN_VALUE}`;

function textsUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => fs.readFileSync(path.join(d.parentPath, d.name), 'utf8'));
}

describe('A session with hidden scores in a real VS Code, over SSH', function () {
  this.timeout(120_000);
  let sshd: Sshd;
  let api: ExtensionApi;
  let environments: string;
  let solutionDir: string;

  before(async () => {
    const ext = vscode.extensions.getExtension<ExtensionApi>(EXTENSION_ID);
    assert.ok(ext, 'the extension is loaded');
    api = await ext.activate();
    environments = hiddenEnvironments(path.join(ext.extensionPath, 'test', 'fixtures', 'environments'), 'none');
    await vscode.workspace.getConfiguration('rebench').update('environmentsFolder', environments, vscode.ConfigurationTarget.Global);
    sshd = await startSshd();
    resetUserHome();
    const choice: ConnectionChoice = {
      kind: 'ssh',
      name: 'hidden scores VM',
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      fingerprint: sshd.hostFingerprint,
      identityFile: sshd.clientKeyPath,
      environmentId: HIDDEN_ENV_ID,
      protectedMode: false,
    };
    assert.equal(await vscode.commands.executeCommand('rebench.connect', choice), true);
    solutionDir = api.controller.snapshot().session!.solutionDir;
  });

  after(async () => {
    await api?.controller.disconnect(true);
    await vscode.workspace.getConfiguration('rebench').update('environmentsFolder', undefined, vscode.ConfigurationTarget.Global);
    await sshd?.stop();
    fs.rmSync(environments, { recursive: true, force: true });
  });

  it('tells the views that scores are hidden, and says so in the pre-flight rules', async () => {
    assert.equal(api.controller.snapshot().environment?.visible, 'none');
    assert.equal(await vscode.commands.executeCommand('rebench.startSession', { confirmed: true }), true);
    assert.equal(api.controller.snapshot().session?.state, 'running');
  });

  it('a run that scored shows as scored, with no value, nothing counted and no best', async () => {
    fs.writeFileSync(path.join(solutionDir, 'score.txt'), HIDDEN_VALUE);
    const entry = await vscode.commands.executeCommand<ScoreLogEntry>('rebench.scoreNow');
    assert.equal(entry.score, null);
    assert.equal(entry.hidden?.scored, true);
    assert.match(entry.message, /^Scored\. The score is hidden from you/);
    const snapshot = api.controller.snapshot();
    assert.equal(snapshot.countedIndex, null);
    assert.equal(snapshot.entries.length, 1);
  });

  it('a run that gave no score shows as no score, with the runner reason where there is one', async () => {
    fs.writeFileSync(path.join(solutionDir, 'fail'), '');
    const failed = await vscode.commands.executeCommand<ScoreLogEntry>('rebench.scoreNow');
    assert.deepEqual([failed.score, failed.hidden?.scored, failed.message], [null, false, 'No score: the scorer exited with code 3.']);
    fs.rmSync(path.join(solutionDir, 'fail'));
  });

  it('no hidden value in the exports, the snapshot the views get, or the extension log', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-hidden-export-'));
    const json = vscode.Uri.file(path.join(dir, 'log.json'));
    const csv = vscode.Uri.file(path.join(dir, 'log.csv'));
    await vscode.commands.executeCommand('rebench.exportLog', 'json', json);
    await vscode.commands.executeCommand('rebench.exportLog', 'metr-csv', csv);
    const exported = JSON.parse(fs.readFileSync(json.fsPath, 'utf8')) as ScoreLogEntry[];
    assert.deepEqual(
      exported.map((e) => [e.score, e.hidden?.scored]),
      [
        [null, true],
        [null, false],
      ],
    );
    // The extension's log is written by VS Code's log service: wait until it has the runs, then search every log
    // of this window (the session's logs folder holds the extension host's and the window's).
    const logs = path.dirname(path.dirname(path.dirname(api.logUri.fsPath)));
    await until('the extension log to have both runs', () => textsUnder(logs).some((t) => t.includes('Score log entry 1: no score')), 20_000);
    const seen = [
      fs.readFileSync(json.fsPath, 'utf8'),
      fs.readFileSync(csv.fsPath, 'utf8'),
      JSON.stringify(api.controller.snapshot()),
      ...textsUnder(logs),
    ].join('\n');
    assert.ok(seen.includes('Score log entry 0: hidden'), 'the log search reads the extension log');
    assert.ok(!seen.includes(HIDDEN_VALUE), 'the hidden score reached the participant');
    assert.ok(!seen.includes(HIDDEN_MESSAGE), "the scorer's hidden message reached the participant");
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
