// Text from the VM is data, never markup: an environment (test/fixtures/environments/hostile) whose title,
// instructions, scorer output and scorer message carry script and javascript: links is set up, scored and
// read through the UI, and every view must show that text literally while nothing of it runs.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { startSshd, type Sshd } from '../support/sshd';
import {
  answerFileDialog,
  globalInEveryFrame,
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
  webviewFrame,
  writeProfile,
  type WorkbenchServer,
} from './harness';

const FIXTURES = path.join(repoRoot, 'test/fixtures/environments');
const TITLE = 'Hostile <img src=x onerror="alert(4);window.__pwned=4"> environment';
const SCRIPT = '<script>window.__pwned=1</script>';
const IMG = '<img src=x onerror="window.__pwned=2">';
const LINK = '[click](javascript:window.__pwned=3)';
const HOSTILE = [SCRIPT, IMG, LINK];

async function text(frame: Frame, selector: string): Promise<string> {
  return (await frame.locator(selector).first().textContent()) ?? '';
}

function assertLiteral(shown: string, where: string, expected: readonly string[] = HOSTILE): void {
  for (const s of expected)
    assert.ok(shown.includes(s), `${where} does not show ${JSON.stringify(s)} literally; it shows ${JSON.stringify(shown.slice(0, 600))}`);
}

/** No element that could run or load anything came out of the hostile text. */
async function assertInert(frame: Frame, where: string): Promise<void> {
  // No named helpers inside: the test's compiler would wrap them in a function the page does not have.
  const found = await frame.evaluate(() => ({
    imgs: Array.from(document.querySelectorAll('img')).map((e) => e.outerHTML),
    iframes: Array.from(document.querySelectorAll('iframe')).map((e) => e.outerHTML),
    // VS Code's own bootstrap (the webview API) is the one inline script expected.
    scripts: Array.from(document.querySelectorAll('script'))
      .filter((e) => !e.getAttribute('src') && e.id !== '_vscodeApiScript')
      .map((e) => e.outerHTML),
    jsLinks: Array.from(document.querySelectorAll('[href]'))
      .map((e) => e.getAttribute('href') ?? '')
      .filter((h) => /^\s*javascript:/i.test(h)),
    handlers: Array.from(document.querySelectorAll('*')).flatMap((e) =>
      Array.from(e.attributes)
        .filter((a) => /^on/i.test(a.name))
        .map((a) => `${e.tagName} ${a.name}`),
    ),
  }));
  assert.deepEqual(found, { imgs: [], iframes: [], scripts: [], jsLinks: [], handlers: [] }, `${where} holds elements made from the hostile text`);
}

describe('Hostile text from the VM shows literally and runs nothing', function () {
  this.timeout(120_000);
  let sshd: Sshd;
  let ws: WorkbenchServer;
  let page: Page;
  let view: Frame;
  let profileDir: string;
  let login: { user: string; home: string };
  const dialogs: string[] = [];

  before(async () => {
    sshd = await startSshd();
    login = freshUiLoginUser();
    profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-ui-hostile-'));
    ws = await startCodeServerWithVsix(undefined, { theme: 'Default Dark Modern', settings: { 'rebench.environmentsFolder': FIXTURES } });
    page = await openWorkbench(ws.url);
    page.on('dialog', (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      void d.dismiss().catch(() => {});
    });
  });
  after(async () => {
    await stopAll();
    await sshd?.stop();
    fs.rmSync(profileDir, { recursive: true, force: true });
  });

  it('connects through the host picker to a VM running the hostile environment', async () => {
    const profile = writeProfile(profileDir, {
      name: 'Hostile VM',
      host: sshd.host,
      port: sshd.port,
      user: login.user,
      host_key_fingerprint: sshd.hostFingerprint,
      environment: 'hostile',
      identity_file: sshd.clientKeyPath,
    });
    await runCommand(page, 'RE-Bench: Import Session Profile…');
    await answerFileDialog(page, profile);
    await notification(page, 'RE-Bench: imported the session profile "Hostile VM"').first().waitFor({ state: 'visible', timeout: 15_000 });
    // Connect later, from the host picker, where the imported profile is listed.
    await runCommandAndPick(page, 'RE-Bench: Connect to a VM…', 'Hostile VM');
    await runCommand(page, 'RE-Bench: Show Session View');
    view = await sessionViewFrame(page);
    await view.locator('.connection-word', { hasText: /^Connected$/ }).waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal((await text(view, '.environment-title > span')).trim(), TITLE);
    await assertInert(view, 'the session view');
  });

  it('shows the title literally in the pre-flight dialog and the status bar tooltip', async () => {
    await view.locator('button', { hasText: /^Start session$/ }).click();
    const dialog = modalDialog(page);
    await dialog.waitFor({ state: 'visible', timeout: 30_000 });
    assertLiteral(await dialog.innerText(), 'the pre-flight dialog', [TITLE]);
    assert.equal(await dialog.locator('img').count(), 0);
    await dialog.locator('.monaco-button', { hasText: 'Start the Clock' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await view.locator('.timer-label', { hasText: 'Time left' }).waitFor({ state: 'visible', timeout: 30_000 });

    const status = statusBarEntry(page, 'RE-Bench:');
    await status.hover();
    const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'RE-Bench session' }).first();
    await hover.waitFor({ state: 'visible', timeout: 10_000 });
    assertLiteral(await hover.innerText(), 'the status bar tooltip', [TITLE]);
    assert.equal(await hover.locator('img').count(), 0, 'the tooltip rendered the title as an image');
    await page.mouse.move(700, 400);
  });

  it('shows hostile scorer output and message literally, live and in the history', async () => {
    await view.locator('.score-now button', { hasText: /^Score now$/ }).click();
    const output = view.locator('pre.job-output', { hasText: LINK });
    await output.waitFor({ state: 'attached', timeout: 30_000 });
    // On a busy machine the job may have ended by now, and its output folds away under
    // "Output of the last scoring job"; unfold it to look at the same text.
    if (!(await output.isVisible())) await view.locator('.job-details summary').click();
    await output.waitFor({ state: 'visible', timeout: 10_000 });
    assertLiteral(await text(view, 'pre.job-output'), 'the job output');
    const row = view.locator('table.runs tbody tr.run').first();
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal((await row.locator('td.score').innerText()).trim(), '7.5');
    assertLiteral(await text(view, 'tr.message-row'), 'the score message in the table');
    await screenshot(page, 'hostile-scored');
    await screenshotOf(page.locator('.monaco-workbench .part.sidebar'), 'hostile-scored-view');
    await assertInert(view, 'the session view');
  });

  it('announces a run with no score with its message as text', async () => {
    // The participant changes their solution so the next run reports no score.
    fs.writeFileSync(path.join(login.home, 'rebench', 'hostile', 'mode'), 'none\n');
    await view.locator('.score-now button', { hasText: /^Score now$/ }).click();
    await view.locator('table.runs tbody tr.run').nth(1).waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal((await view.locator('table.runs tbody tr.run').first().locator('td.score').innerText()).trim(), 'no score');
    await view.waitForFunction(
      () => /Scoring finished with no score/.test(document.querySelector('[role="status"][aria-live="polite"].visually-hidden')?.textContent ?? ''),
      undefined,
      { timeout: 5_000 },
    );
    assertLiteral(await text(view, '[role="status"][aria-live="polite"].visually-hidden'), 'the announcement');
    // The warning toast quotes the message; a Markdown link in it must not become a javascript: link.
    const toast = notification(page, 'gave no score').first();
    await toast.waitFor({ state: 'visible', timeout: 10_000 });
    assertLiteral(await toast.innerText(), 'the warning notification', [SCRIPT, IMG]);
    const toastLinks = await toast.locator('a[href]').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''));
    assert.deepEqual(
      toastLinks.filter((h) => /^\s*javascript:/i.test(h)),
      [],
      'the notification turned the message into a javascript: link',
    );
    await screenshot(page, 'hostile-no-score');
    await assertInert(view, 'the session view');
  });

  it('shows the instructions as text, with no script, image, frame or javascript: link', async () => {
    await view.locator('.actions button', { hasText: /^Instructions$/ }).click();
    const instructions = await webviewFrame(page, 'Instructions');
    await instructions.locator('h1', { hasText: 'Hostile instructions' }).waitFor({ state: 'visible', timeout: 15_000 });
    const body = (await instructions.locator('body').textContent()) ?? '';
    // A Markdown link with a javascript: target is not a link: it stays the text that was written.
    assertLiteral(body, 'the instructions', [...HOSTILE, '<javascript:window.__pwned=5>', '<iframe src="javascript:window.__pwned=7"></iframe>']);
    await assertInert(instructions, 'the instructions');
    await screenshot(page, 'hostile-instructions');
  });

  it('shows the message literally in the score history panel', async () => {
    await view.locator('.actions button', { hasText: /^History$/ }).click();
    let history: Frame | undefined;
    const deadline = Date.now() + 20_000;
    while (!history) {
      for (const f of page.frames()) {
        if (
          await f
            .locator('main.app.layout-history')
            .count()
            .catch(() => 0)
        )
          history = f;
      }
      if (!history && Date.now() > deadline) throw new Error('The score history panel did not open.');
      if (!history) await page.waitForTimeout(200);
    }
    await history.locator('table.runs.wide tbody tr.run').nth(1).waitFor({ state: 'visible', timeout: 15_000 });
    assertLiteral(await text(history, 'table.runs.wide'), 'the history table');
    await assertInert(history, 'the score history panel');
    await screenshot(page, 'hostile-history');
  });

  it('ran nothing: no browser dialog, and window.__pwned is unset in every frame', async () => {
    assert.deepEqual(dialogs, [], 'a browser dialog was opened');
    const frames = await globalInEveryFrame(page, '__pwned');
    assert.ok(frames.length >= 4, `only ${frames.length} frames were checked`);
    const set = frames.filter((f) => f.type !== 'undefined' && !f.type.startsWith('gone'));
    assert.deepEqual(set, [], 'window.__pwned was set');
  });
});
