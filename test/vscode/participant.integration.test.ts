// Notes, kept solutions, giving up and the end questions, inside a real VS Code over a private sshd: the
// commands a participant runs (with their confirmations given, as the palette's dialogs would), and what the
// VM recorded afterwards.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ScoreLogEntry } from '../../src/core/runnerProtocol';
import { jsonLinesOf } from '../support/runner';
import type { Sshd } from '../support/sshd';
import { until } from '../support/wait';
import { closeParticipantVm, connectAndStart, participantVm, type ParticipantVm, type SshChoice } from '../support/vscodeVm';

const QUESTIONS = [
  { id: 'difficulty', text: 'How hard was it?', type: 'scale' as const, labels: ['easy', 'hard'] },
  { id: 'comments', text: 'Anything else?', type: 'text' as const },
];

/** The session record on the VM (unprotected mode: in the participant's own runner home). */
const records = (sshd: Sshd) => jsonLinesOf(path.join(sshd.home, '.rebench', 'state', 'records.jsonl'));

describe('Notes, kept solutions, giving up and the end questions in a real VS Code', function () {
  this.timeout(120_000);
  let vm: ParticipantVm;
  let solution: string;

  before(async () => {
    vm = await participantVm({
      choice: {
        name: 'participant test VM',
        study: { rules: ['No AI assistants.'], end_questions: QUESTIONS, give_up_reasons: ['Out of ideas'] },
      },
    });
    solution = await connectAndStart(vm);
  });

  after(() => closeParticipantVm(vm));

  it('an imported session profile can be removed, after a confirmation, and is then gone from the picker', async () => {
    const file = path.join(os.tmpdir(), `rebench-profile-${process.pid}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({
        name: 'Old study VM',
        host: '127.0.0.1',
        port: 2222,
        user: 'p',
        host_key_fingerprint: vm.sshd.hostFingerprint,
        environment: 'slow-scorer',
      }),
    );
    try {
      const imported = await vscode.commands.executeCommand<{ name: string }>('rebench.importProfile', vscode.Uri.file(file));
      assert.equal(imported?.name, 'Old study VM');
      assert.equal(await vscode.commands.executeCommand('rebench.removeProfile', 'Old study VM', { confirmed: true }), true);
      await assert.rejects(
        Promise.resolve(vscode.commands.executeCommand('rebench.removeProfile', 'Old study VM', { confirmed: true })),
        /There is no imported session profile "Old study VM"/,
      );
      // Removing a profile leaves the connection alone.
      assert.equal(vm.api.controller.snapshot().connection.kind, 'connected');
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it("records the study's rules agreed to before the clock started", () => {
    const first = records(vm.sshd)[0];
    assert.equal(first?.kind, 'rules_confirmed');
    assert.deepEqual(first?.rules, ['No AI assistants.']);
    assert.equal(first?.elapsed_s, null);
  });

  it('Add Note records the Markdown with the session time on the VM', async () => {
    assert.equal(await vscode.commands.executeCommand('rebench.addNote', 'Tried a **fused** kernel'), true);
    const note = records(vm.sshd).find((r) => r.kind === 'note');
    assert.equal(note?.text, 'Tried a **fused** kernel');
    assert.equal(typeof note?.elapsed_s, 'number');
  });

  it('connecting to a second VM that fails leaves the running session counting down in the status bar, marked not connected', async () => {
    const before = vm.api.controller.snapshot();
    assert.equal(before.session?.state, 'running');
    // The wrong host key: the second connection fails before logging in. (The palette asks first; here the
    // participant's "Connect" in that dialog is given.)
    const other: SshChoice = {
      ...vm.choice,
      name: 'second VM',
      fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      environmentId: 'demo-fast-function',
    };
    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('rebench.connect', other, { confirmed: true })), /host key/i);
    assert.equal(vm.api.controller.connected, false);
    const after = vm.api.controller.snapshot();
    assert.equal(after.connection.kind, 'disconnected');
    assert.match(after.connection.detail, /^Not connected\. Your session on .* goes on: its clock runs on the VM/);
    assert.equal(after.session?.state, 'running');
    assert.equal(after.session?.deadlineLocalMs, before.session?.deadlineLocalMs, 'the countdown is the last known deadline');
    assert.equal(after.entries.length, before.entries.length);
    assert.match(vm.api.controller.statusBarText() ?? '(hidden)', /^\$\(watch\) \d+:\d\d:\d\d left · not connected \$\(debug-disconnect\)$/);
    // Back to the first VM: the session is there, as it was.
    assert.equal(await vscode.commands.executeCommand('rebench.connect', vm.choice), true);
    assert.equal(vm.api.controller.snapshot().connection.kind, 'connected');
    assert.match(vm.api.controller.statusBarText() ?? '(hidden)', /^\$\(watch\) \d+:\d\d:\d\d left$/);
  });

  it('Restore puts a scored solution back, keeps the current one first, and the best run is marked', async () => {
    fs.writeFileSync(path.join(solution, 'delay_s'), '0');
    fs.writeFileSync(path.join(solution, 'score.txt'), '9');
    await until('Score now to be enabled', () => vm.api.controller.snapshot().scoreDisabledReason === null);
    const good = await vscode.commands.executeCommand<ScoreLogEntry>('rebench.scoreNow');
    assert.equal(good.score, 9);
    assert.ok(good.snapshot && 'id' in good.snapshot);
    fs.writeFileSync(path.join(solution, 'score.txt'), 'broken at hour six');
    fs.writeFileSync(path.join(solution, 'half-done.py'), 'x = 1\n');
    assert.equal(await vscode.commands.executeCommand('rebench.restoreSolution', good.index, { confirmed: true }), true);
    assert.equal(fs.readFileSync(path.join(solution, 'score.txt'), 'utf8'), '9');
    assert.equal(fs.existsSync(path.join(solution, 'half-done.py')), false);
    const restore = records(vm.sshd).find((r) => r.kind === 'restore');
    assert.equal(restore?.snapshot, good.snapshot.id);
    assert.equal(typeof restore?.kept_as, 'string', 'the state before the restore was kept');
    const changes = await vm.api.controller.current!.client.snapshotChanges(String(restore?.kept_as), good.snapshot.id);
    assert.deepEqual(
      changes.changes.map((c) => c.path),
      ['half-done.py', 'score.txt'],
    );
  });

  it('Show Changes opens a diff editor of the kept file against the folder now', async () => {
    fs.writeFileSync(path.join(solution, 'score.txt'), '10');
    await vscode.commands.executeCommand('rebench.showChanges', 0, 'current');
    await until('a diff editor', () => vscode.window.tabGroups.activeTabGroup.activeTab?.input instanceof vscode.TabInputTextDiff, 15_000);
    const input = vscode.window.tabGroups.activeTabGroup.activeTab!.input as vscode.TabInputTextDiff;
    assert.equal(input.original.scheme, 'rebench-snapshot');
    const kept = await vscode.workspace.openTextDocument(input.original);
    assert.equal(kept.getText(), '9');
    const now = await vscode.workspace.openTextDocument(input.modified);
    assert.equal(now.getText(), '10');
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  it('Give Up records the reason and ends the session', async () => {
    assert.equal(await vscode.commands.executeCommand('rebench.giveUp', { reason: 'the GPU fell off the bus', choice: 'Out of ideas' }), true);
    assert.equal(vm.api.controller.snapshot().session?.state, 'ended');
    const gaveUp = records(vm.sshd).find((r) => r.kind === 'give_up');
    assert.deepEqual([gaveUp?.reason, gaveUp?.choice], ['the GPU fell off the bus', 'Out of ideas']);
    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('rebench.answerEndQuestions', { difficulty: 9 })), /from 1 to 5/);
    assert.equal(
      records(vm.sshd).find((r) => r.kind === 'answers'),
      undefined,
      'an answer out of range recorded something',
    );
  });

  it('the end questions form opens in the editor, shows what is wrong, and sends the answers to the VM', async () => {
    assert.equal(await vscode.commands.executeCommand('rebench.answerEndQuestions'), 'form');
    const form = vm.api.endQuestionsForm();
    assert.ok(form, 'no end questions form is open');
    await until('the form in an editor tab', () => vscode.window.tabGroups.all.some((g) => g.tabs.some((t) => t.label === 'RE-Bench: End Questions')));
    assert.deepEqual(form.formState.questions, QUESTIONS);
    assert.equal(form.formState.state, 'open');
    // What the form posts: a malformed message is ignored, an answer out of range is refused with its reason.
    await form.receive({ type: 'submit', answers: 'all of them' });
    assert.equal(form.formState.state, 'open');
    await form.receive({ type: 'submit', answers: { difficulty: 9, comments: null } });
    assert.match(form.formState.error ?? '', /"How hard was it\?" must be a whole number from 1 to 5/);
    assert.equal(form.formState.state, 'open');
    // A question left empty is sent as null: every question may be skipped.
    await form.receive({ type: 'submit', answers: { difficulty: 4, comments: null } });
    assert.equal(form.formState.state, 'answered');
    assert.equal(form.formState.error, null);
    assert.equal(await form.outcome, 'answered');
    const answers = records(vm.sshd).find((r) => r.kind === 'answers');
    assert.deepEqual(answers?.answers, [
      { id: 'difficulty', value: 4 },
      { id: 'comments', value: null },
    ]);
    assert.deepEqual(answers?.questions, QUESTIONS, 'the questions from the profile travel with the answers');
    // Once answered, they are not asked again; a second send from the form changes nothing.
    await form.receive({ type: 'skip' });
    assert.equal(records(vm.sshd).filter((r) => r.kind === 'answers').length, 1);
    assert.equal(await vscode.commands.executeCommand('rebench.answerEndQuestions'), undefined);
    form.dispose();
  });
});
