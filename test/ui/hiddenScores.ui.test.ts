// A session whose scores are hidden from the participant (scoring.visible "none", METR's visible_to_agent:
// false) in a real VS Code (code-server in headless Chromium) over SSH: the pre-flight says so, each run shows
// that it happened and whether it scored, and no value, normalised score, best or chart appears anywhere in
// the session view. The screenshots are kept (hidden-scores-*.png).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { HIDDEN_ENV_ID, hiddenEnvironments } from '../support/hiddenEnvironment';
import { startSshd, type Sshd } from '../support/sshd';
import {
  answerFileDialog,
  freshUiLoginUser,
  modalDialog,
  notification,
  openWorkbench,
  repoRoot,
  runCommand,
  runCommandAndPick,
  screenshot,
  sessionViewFrame,
  screenshotOf,
  startCodeServerWithVsix,
  statusBarEntry,
  stopAll,
  writeProfile,
  type WorkbenchServer,
} from './harness';

const HIDDEN_VALUE = '4.7319';

describe('Hidden scores in the session view of a real VS Code', function () {
  this.timeout(120_000);
  let sshd: Sshd;
  let ws: WorkbenchServer;
  let page: Page;
  let view: Frame;
  let environments: string;
  let profileDir: string;
  let login: { user: string; home: string };

  before(async () => {
    sshd = await startSshd();
    login = freshUiLoginUser();
    environments = hiddenEnvironments(path.join(repoRoot, 'test/fixtures/environments'), 'none');
    profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-ui-hidden-'));
    ws = await startCodeServerWithVsix(undefined, { theme: 'Default Dark Modern', settings: { 'rebench.environmentsFolder': environments } });
    page = await openWorkbench(ws.url);
  });
  after(async () => {
    await stopAll();
    await sshd?.stop();
    fs.rmSync(profileDir, { recursive: true, force: true });
    fs.rmSync(environments, { recursive: true, force: true });
  });

  it('connects, and the pre-flight says that the scores are hidden', async () => {
    const profile = writeProfile(profileDir, {
      name: 'Hidden scores VM',
      host: sshd.host,
      port: sshd.port,
      user: login.user,
      host_key_fingerprint: sshd.hostFingerprint,
      environment: HIDDEN_ENV_ID,
      identity_file: sshd.clientKeyPath,
    });
    await runCommand(page, 'RE-Bench: Import Session Profile…');
    await answerFileDialog(page, profile);
    await notification(page, 'RE-Bench: imported the session profile "Hidden scores VM"').first().waitFor({ state: 'visible', timeout: 15_000 });
    await runCommandAndPick(page, 'RE-Bench: Connect to a VM…', 'Hidden scores VM');
    await runCommand(page, 'RE-Bench: Show Session View');
    view = await sessionViewFrame(page);
    await view.locator('.connection-word', { hasText: /^Connected$/ }).waitFor({ state: 'visible', timeout: 30_000 });
    await view.locator('button', { hasText: /^Start session$/ }).click();
    const dialog = modalDialog(page);
    await dialog.waitFor({ state: 'visible', timeout: 30_000 });
    assert.match(await dialog.innerText(), /Your scores are hidden in this study: you see that each run happened and whether it scored, never the value/);
    await dialog.locator('.monaco-button', { hasText: 'Start the Clock' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await view.locator('.timer-label', { hasText: 'Time left' }).waitFor({ state: 'visible', timeout: 30_000 });
  });

  it('shows each run as scored or not, never a value, a normalised score, a best or a chart', async () => {
    const solution = path.join(login.home, 'rebench', HIDDEN_ENV_ID);
    fs.writeFileSync(path.join(solution, 'score.txt'), `${HIDDEN_VALUE}\n`);
    await view.locator('.score-now button', { hasText: /^Score now$/ }).click();
    await view.locator('table.runs tbody tr.run').first().waitFor({ state: 'visible', timeout: 30_000 });
    await notification(page, /scoring run 1 scored\. The score is hidden from you/)
      .first()
      .waitFor({ state: 'visible', timeout: 10_000 });
    fs.writeFileSync(path.join(solution, 'fail'), '');
    await view.locator('.score-now button', { hasText: /^Score now$/ }).click();
    await view.locator('table.runs tbody tr.run').nth(1).waitFor({ state: 'visible', timeout: 30_000 });
    const rows = view.locator('table.runs tbody tr.run');
    assert.equal((await rows.nth(0).locator('td.score').innerText()).trim(), 'no score');
    assert.equal((await rows.nth(1).locator('td.score').innerText()).trim(), 'hidden');
    assert.match(await rows.nth(1).locator('td.status').innerText(), /scored/);
    const scores = await view.locator('section.scores').innerText();
    assert.match(scores, /Runs\s*2 · 1 scored · 1 with no score/);
    assert.match(scores, /Your scores are hidden in this study/);
    assert.doesNotMatch(scores, /Best score|normalised/i);
    assert.equal(await view.locator('section.chart-section').isVisible(), false, 'a chart is drawn');
    const everything = await view.locator('main.app').innerText();
    assert.ok(!everything.includes(HIDDEN_VALUE), 'the hidden score shows in the session view');
    const status = statusBarEntry(page, 'RE-Bench:');
    await status.hover();
    const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'RE-Bench session' }).first();
    await hover.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await hover.innerText(), /Scores are hidden from you in this study/);
    await page.mouse.move(700, 400);
    await page.waitForTimeout(300);
    await screenshot(page, 'hidden-scores');
    await screenshotOf(page.locator('.monaco-workbench .part.sidebar'), 'hidden-scores-view');
  });
});
