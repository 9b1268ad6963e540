// Submit Answer… as a participant uses it, in a real VS Code (code-server, headless Chromium) over a private
// sshd, for an environment scored once at the end from the submitted answer
// (test/fixtures/environments/answer-check): the session view offers Submit answer… with the answer's form
// instead of Score now; the input box shows the form and refuses an answer of another form as it is typed;
// the confirmation says the session ends; then the answer is scored and the session has ended.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { startSshd, type Sshd } from '../support/sshd';
import {
  answerFileDialog,
  freshUiLoginUser,
  modalDialog,
  notification,
  openWorkbench,
  quickInput,
  repoRoot,
  runCommand,
  runCommandAndPick,
  screenshot,
  sessionViewFrame,
  startCodeServerWithVsix,
  stopAll,
  writeProfile,
  type WorkbenchServer,
} from './harness';

const FIXTURES = path.join(repoRoot, 'test/fixtures/environments');

describe('Submit Answer… in the session view (end scoring)', function () {
  this.timeout(180_000);
  let sshd: Sshd;
  let ws: WorkbenchServer;
  let page: Page;
  let view: Frame;
  let profileDir: string;
  let login: { user: string; home: string };

  before(async () => {
    sshd = await startSshd();
    login = freshUiLoginUser();
    profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-ui-submit-'));
    ws = await startCodeServerWithVsix(undefined, { theme: 'Default Dark Modern', settings: { 'rebench.environmentsFolder': FIXTURES } });
    page = await openWorkbench(ws.url);
  });
  after(async () => {
    await stopAll();
    await sshd?.stop();
    if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
  });

  it('connects and starts a session of an end-scoring environment: Submit answer… with the form, no Score now', async () => {
    const profile = writeProfile(profileDir, {
      name: 'Answer VM',
      host: sshd.host,
      port: sshd.port,
      user: login.user,
      host_key_fingerprint: sshd.hostFingerprint,
      environment: 'answer-check',
      identity_file: sshd.clientKeyPath,
    });
    await runCommand(page, 'RE-Bench: Import Session Profile…');
    await answerFileDialog(page, profile);
    await notification(page, 'RE-Bench: imported the session profile "Answer VM"').first().waitFor({ state: 'visible', timeout: 15_000 });
    await runCommandAndPick(page, 'RE-Bench: Connect to a VM…', 'Answer VM');
    await runCommand(page, 'RE-Bench: Show Session View');
    view = await sessionViewFrame(page);
    await view.locator('.connection-word', { hasText: /^Connected$/ }).waitFor({ state: 'visible', timeout: 30_000 });
    await view.locator('button', { hasText: /^Start session$/ }).click();
    const dialog = modalDialog(page);
    await dialog.waitFor({ state: 'visible', timeout: 30_000 });
    await dialog.locator('.monaco-button', { hasText: 'Start the Clock' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await view.locator('.timer-label', { hasText: 'Time left' }).waitFor({ state: 'visible', timeout: 30_000 });
    const submit = view.locator('button', { hasText: /^Submit answer…$/ });
    await submit.waitFor({ state: 'visible', timeout: 15_000 });
    assert.equal(await view.locator('button:visible', { hasText: /^Score now$/ }).count(), 0, 'Score now is offered');
    assert.match(await view.locator('.answer-format').innerText(), /^Answer format: the sum as a whole number.*Submitting ends the session\.$/s);
    await screenshot(page, 'submit-answer-view');
  });

  it('shows the form in the input box and refuses an answer of another form as it is typed', async () => {
    await view.locator('button', { hasText: /^Submit answer…$/ }).click();
    const widget = quickInput(page);
    await widget.locator('.quick-input-title', { hasText: 'RE-Bench: Submit Answer' }).waitFor({ state: 'visible', timeout: 15_000 });
    const input = widget.locator('.quick-input-box input');
    await input.focus();
    await page.keyboard.type('forty-nine', { delay: 5 });
    await widget
      .locator('.quick-input-message', { hasText: /does not have the form the instructions ask for: the sum as a whole number/ })
      .waitFor({ state: 'visible', timeout: 10_000 });
    await screenshot(page, 'submit-answer-refused');
    await input.fill('');
    await page.keyboard.type('49', { delay: 5 });
    await widget.locator('.quick-input-message', { hasText: /Answer format: the sum as a whole number/ }).waitFor({ state: 'visible', timeout: 10_000 });
    await page.keyboard.press('Enter');
  });

  it('confirms that the session ends, then scores the answer once and the session has ended', async () => {
    const dialog = modalDialog(page);
    await dialog.waitFor({ state: 'visible', timeout: 15_000 });
    const said = await dialog.innerText();
    assert.match(said, /Submit this answer and end your session\?/);
    assert.match(said, /Your answer: 49/);
    assert.match(said, /The session ends now/);
    await screenshot(page, 'submit-answer-confirm');
    await dialog.locator('.monaco-button', { hasText: 'Submit and End Session' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await view.locator('.score-big', { hasText: '1' }).waitFor({ state: 'visible', timeout: 60_000 });
    await view.locator('.timer-label', { hasText: /ended/i }).waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await view.locator('button:visible', { hasText: /^Submit answer…$/ }).count(), 0, 'Submit is still offered after the end');
    const records = fs.readFileSync(path.join(login.home, '.rebench', 'state', 'records.jsonl'), 'utf8');
    assert.match(records, /"kind":"submission"/);
    assert.match(records, /"answer":"49"/);
    await screenshot(page, 'submit-answer-done');
  });
});
