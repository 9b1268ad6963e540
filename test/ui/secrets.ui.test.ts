// No secret in any log: the participant's SSH key passphrase is typed into VS Code's own input box (in a
// real VS Code, code-server, driven by headless Chromium), first wrong and then right. Then the flow runs:
// connect, start, score, export, check, disconnect. Afterwards every file the extension and VS Code wrote
// (the logs folder with the extension's "RE-Bench" log, global and workspace storage, settings), the
// exported files, the server's output, the browser's console and storage, and the runner's files on the
// "VM" are searched for both passphrases: none may hold either.
//
// This is a UI test rather than an extension-host test because only a browser driver can type into an
// input box (see test/vscode/security.integration.test.ts).
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { recordFigure } from '../support/figures';
import { startSshd, type Sshd } from '../support/sshd';
import {
  answerFileDialog,
  answerSaveDialog,
  clickNotificationButton,
  freshUiLoginUser,
  modalDialog,
  notification,
  notificationTexts,
  openWorkbench,
  quickInput,
  runCommand,
  runCommandAndPick,
  screenshot,
  startCodeServerWithVsix,
  statusBarEntry,
  stopAll,
  writeProfile,
  webviewFrame,
  withQuickInput,
  type WorkbenchServer,
} from './harness';

const ENVIRONMENT = 'demo-fast-function';

/** Every regular file under a folder (links are not followed). */
function filesUnder(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}

/** Where `secret` occurs in `data`, as UTF-8 or as UTF-16 (some stores keep text that way). */
function holds(data: Buffer, secret: string): boolean {
  return data.includes(Buffer.from(secret, 'utf8')) || data.includes(Buffer.from(secret, 'utf16le'));
}

async function waitForToast(page: Page, text: RegExp, timeoutMs = 60_000): Promise<string> {
  const toast = notification(page, text).first();
  try {
    await toast.waitFor({ state: 'visible', timeout: timeoutMs });
  } catch {
    throw new Error(`No notification ${String(text)} within ${timeoutMs} ms. Shown: ${JSON.stringify(await notificationTexts(page))}`);
  }
  return toast.innerText();
}

/** Types into the passphrase prompt key by key, as a person does, and accepts it. */
async function answerPassphrase(page: Page, passphrase: string, expectPrompt: RegExp): Promise<void> {
  const widget = quickInput(page);
  await widget.locator('.quick-input-title', { hasText: 'RE-Bench: SSH key passphrase' }).waitFor({ state: 'visible', timeout: 30_000 });
  await widget.locator('.quick-input-message', { hasText: expectPrompt }).waitFor({ state: 'visible', timeout: 10_000 });
  const input = widget.locator('.quick-input-box input');
  assert.equal(await input.getAttribute('type'), 'password', 'the passphrase is typed into a masked field');
  await input.focus();
  await page.keyboard.type(passphrase, { delay: 5 });
  await page.keyboard.press('Enter');
}

describe('No secret in any log: a passphrase typed into VS Code', function () {
  this.timeout(240_000);
  // Unique strings, so that a hit can only be the passphrase itself.
  const passphrase = `Pp-${randomBytes(12).toString('hex')}`;
  const wrongGuess = `Wg-${randomBytes(12).toString('hex')}`;
  let sshd: Sshd;
  let ws: WorkbenchServer;
  let page: Page;
  let login: { user: string; home: string };
  let scratch: string;
  const consoleLines: string[] = [];

  before(async () => {
    login = freshUiLoginUser('rebench-secrets');
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-secrets-'));
    sshd = await startSshd({ clientKeyPassphrase: passphrase });
    ws = await startCodeServerWithVsix(undefined, {});
    page = await openWorkbench(ws.url);
    page.on('console', (m) => consoleLines.push(m.text()));
  });
  after(async () => {
    await page
      ?.context()
      .close()
      .catch(() => {});
    await stopAll();
    await sshd?.stop();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    for (const rel of ['.rebench', 'rebench']) if (login) fs.rmSync(path.join(login.home, rel), { recursive: true, force: true });
  });

  it('connects with a passphrase-protected key: a wrong passphrase is asked again, the right one connects', async () => {
    const profile = writeProfile(scratch, {
      name: 'Secrets test VM',
      host: sshd.host,
      port: sshd.port,
      user: login.user,
      host_key_fingerprint: sshd.hostFingerprint,
      environment: ENVIRONMENT,
      identity_file: sshd.clientKeyPath,
    });
    await runCommand(page, 'RE-Bench: Import Session Profile…');
    await answerFileDialog(page, profile);
    await clickNotificationButton(page, 'RE-Bench: imported the session profile "Secrets test VM"', 'Connect Now');
    await answerPassphrase(page, wrongGuess, new RegExp(`^Passphrase for ${sshd.clientKeyPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    await answerPassphrase(page, passphrase, /^Wrong passphrase\. Try again/);
    await screenshot(page, 'secrets-after-passphrase');
    const status = statusBarEntry(page, 'RE-Bench:');
    await page.waitForFunction(() => /not started/.test(document.querySelector('.part.statusbar')?.textContent ?? ''), undefined, { timeout: 60_000 });
    assert.match(await status.innerText(), /not started/);
    // Connecting reveals the session view, which takes the focus: let it arrive before the next command.
    const view = await webviewFrame(page);
    await view.locator('.connection-word', { hasText: /^Connected$/ }).waitFor({ state: 'visible', timeout: 30_000 });
    await page.waitForTimeout(1_000);
  });

  it('runs the session: start, score, export both formats, check the log, disconnect', async () => {
    await runCommand(page, 'RE-Bench: Start Session…');
    const dialog = modalDialog(page);
    await dialog.waitFor({ state: 'visible', timeout: 30_000 });
    await dialog.locator('.monaco-button', { hasText: 'Start the Clock' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.waitForFunction(() => /\d+:\d\d:\d\d left/.test(document.querySelector('.part.statusbar')?.textContent ?? ''), undefined, { timeout: 30_000 });
    // The instructions open as the clock starts and take the focus.
    await page.locator('.tabs-container .tab', { hasText: 'Instructions:' }).waitFor({ state: 'visible', timeout: 30_000 });
    await page.waitForTimeout(1_000);

    await runCommand(page, 'RE-Bench: Score Now');
    assert.match(await waitForToast(page, /RE-Bench: (score -?\d|scoring run 1 gave no score)/, 90_000), /RE-Bench: score/);

    fs.mkdirSync(path.join(scratch, 'exports'));
    for (const [label, file] of [
      ['JSON', 'log.json'],
      ['METR CSV', 'log.csv'],
    ] as const) {
      const target = path.join(scratch, 'exports', file);
      await withQuickInput(
        page,
        () => runCommandAndPick(page, 'RE-Bench: Export Score Log…', new RegExp(`^${label}$`)),
        () => answerSaveDialog(page, target, /score-log/),
      );
      try {
        await waitForToast(page, new RegExp(`RE-Bench: score log exported to .*${file.replace('.', '\\.')}`), 30_000);
      } catch (e) {
        await screenshot(page, `secrets-export-${file}`);
        throw e;
      }
    }
    assert.equal((JSON.parse(fs.readFileSync(path.join(scratch, 'exports', 'log.json'), 'utf8')) as unknown[]).length, 1);
    assert.match(fs.readFileSync(path.join(scratch, 'exports', 'log.csv'), 'utf8'), /^timestamp,score,message,details\n/);

    await runCommand(page, 'RE-Bench: Check Score Log Integrity');
    await waitForToast(page, /The score log is intact: 1 entries/, 30_000);
    await runCommand(page, 'RE-Bench: Disconnect');
    await page.waitForFunction(() => !/left|not started/.test(document.querySelector('.part.statusbar')?.textContent ?? ''), undefined, { timeout: 15_000 });
  });

  it('no log, storage, export, console line or runner file holds either passphrase', async () => {
    // Give the log writers a moment to flush what the last commands logged.
    await page.waitForTimeout(2_000);
    const server = ws.server;
    const files = [
      ...filesUnder(server.userDataDir),
      ...filesUnder(server.extensionsDir),
      ...filesUnder(server.folder),
      ...filesUnder(scratch),
      ...filesUnder(path.join(login.home, '.rebench')),
      ...filesUnder(path.join(login.home, 'rebench')),
    ].filter((f) => f !== sshd.clientKeyPath);
    const texts: { where: string; data: Buffer }[] = files.map((f) => ({ where: f, data: fs.readFileSync(f) }));
    texts.push({ where: 'code-server output', data: Buffer.from(server.output()) });
    texts.push({ where: 'browser console', data: Buffer.from(consoleLines.join('\n')) });
    texts.push({ where: 'browser storage', data: Buffer.from(JSON.stringify(await page.context().storageState())) });
    texts.push({ where: 'sshd log', data: Buffer.from(sshd.readLog()) });

    // The search must be able to fail: the extension's own log is among the files, and it has content.
    const extensionLogs = files.filter((f) => f.startsWith(path.join(server.userDataDir, 'logs')) && /RE-Bench\.log$/.test(f));
    assert.ok(
      extensionLogs.length >= 1,
      `no RE-Bench log file under ${server.userDataDir}/logs; files: ${files.filter((f) => f.includes('/logs/')).join('\n')}`,
    );
    const extensionLog = extensionLogs.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    assert.ok(extensionLog.includes(sshd.clientKeyPath), 'the extension log names the key it used');
    assert.match(extensionLog, /Connected to rebench-secrets@127\.0\.0\.1/);
    assert.match(extensionLog, /Exported the score log/);
    assert.ok(
      files.some((f) => f.endsWith(path.join('exports', 'log.csv'))),
      'the exports are searched',
    );
    assert.ok(
      files.some((f) => f.startsWith(path.join(login.home, '.rebench', 'state'))),
      "the runner's files are searched",
    );
    // The key file itself holds the passphrase-protected key, not the passphrase; its contents must not leak either.
    const keyBody = fs.readFileSync(sshd.clientKeyPath, 'utf8').split('\n')[1] ?? '';
    assert.ok(keyBody.length > 20);

    // The same search finds what is there: the key's path is in the extension's log.
    const controls = texts.filter(({ data }) => holds(data, sshd.clientKeyPath)).map((t) => t.where);
    assert.ok(
      controls.some((w) => extensionLogs.includes(w)),
      `the search did not find the key path in the extension log: ${controls.join(', ')}`,
    );

    const leaks: string[] = [];
    for (const { where, data } of texts) {
      if (holds(data, passphrase)) leaks.push(`${where}: the passphrase`);
      if (holds(data, wrongGuess)) leaks.push(`${where}: the wrong guess`);
      if (holds(data, keyBody)) leaks.push(`${where}: private key material`);
    }
    const bytes = texts.reduce((n, t) => n + t.data.length, 0);
    console.log(
      `      searched ${texts.length} files and streams (${(bytes / 1024).toFixed(0)} KiB), the extension log ${extensionLogs.map((f) => path.relative(server.userDataDir, f)).join(', ')}: ${leaks.length} leaks`,
    );
    assert.deepEqual(leaks, []);
    recordFigure({
      test: 'No passphrase in any log',
      proves:
        'A passphrase typed into VS Code (wrong once, then right) appears in none of the files and streams written during connect, start, score, export, check and disconnect',
      inputsTried: texts.length,
      parser: 'files and streams searched',
    });
  });
});
