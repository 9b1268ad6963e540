// Helpers for UI tests: a real VS Code (code-server) with the packaged extension installed, driven by
// playwright in headless Chromium. Typical use:
//   const ws = await startCodeServerWithVsix(vsixPath, { theme: 'Default Dark Modern' });
//   const page = await openWorkbench(ws.url);
//   await runCommand(page, 'RE-Bench: Connect');
//   const view = await webviewFrame(page, 'Session');
//   await screenshot(page, 'connected-dark');
//   ... after(stopAll)
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Frame, Locator, Page } from 'playwright-core';
import * as cs from '../../scripts/codeServer.mjs';
import { sshLoginUser } from '../support/sshd';

export const repoRoot = cs.repoRoot;
export const defaultVsixPath = path.join(repoRoot, 'dist/rebench-session.vsix');
export const screenshotDir = path.join(repoRoot, '.test-output/screenshots');

export interface WorkbenchOptions {
  /** A color theme name, e.g. 'Default Dark Modern', 'Default Light Modern', 'Default High Contrast'. */
  theme?: string;
  /** Extra user settings (merged over quiet defaults). */
  settings?: Record<string, unknown>;
  /** Extra environment for the server, which the extension host inherits. */
  env?: Record<string, string>;
  /** The folder to open (default: an empty temporary folder). */
  folder?: string;
}

export interface WorkbenchServer {
  /** The workbench URL to give to openWorkbench. */
  url: string;
  server: cs.CodeServer;
  stop(): Promise<void>;
}

const servers = new Set<WorkbenchServer>();
let browser: Browser | undefined;

/** Starts code-server with a fresh profile and no extensions installed. */
export async function startWorkbenchServer(options: WorkbenchOptions = {}): Promise<WorkbenchServer> {
  return startServer(undefined, options);
}

/** Installs the VSIX into a fresh extensions folder, then starts code-server with it. */
export async function startCodeServerWithVsix(vsixPath: string = defaultVsixPath, options: WorkbenchOptions = {}): Promise<WorkbenchServer> {
  return startServer(vsixPath, options);
}

async function startServer(vsixPath: string | undefined, options: WorkbenchOptions): Promise<WorkbenchServer> {
  cs.checkTestDeps();
  const scratch = cs.makeTempDir('rebench-ui-');
  const userDataDir = path.join(scratch, 'user-data');
  const extensionsDir = path.join(scratch, 'extensions');
  fs.mkdirSync(extensionsDir, { recursive: true });
  if (vsixPath) {
    await cs.installVsix({ vsixPath, extensionsDir, userDataDir, env: options.env });
  }
  const settings = { ...(options.theme ? { 'workbench.colorTheme': options.theme } : {}), ...options.settings };
  const server = await cs.startCodeServer({
    userDataDir,
    extensionsDir,
    folder: options.folder ?? path.join(scratch, 'workspace'),
    settings,
    env: options.env,
  });
  const handle: WorkbenchServer = {
    url: server.workbenchUrl(),
    server,
    async stop() {
      servers.delete(handle);
      await server.stop();
      fs.rmSync(scratch, { recursive: true, force: true });
    },
  };
  servers.add(handle);
  return handle;
}

/** Opens the workbench in a fresh browser context and waits until its main parts are shown. */
export async function openWorkbench(url: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
  browser ??= await cs.launchChromium();
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  // Ready means: the remote extension host has registered the built-in contributions (the problems entry
  // in the status bar) and the configured color theme is applied (until then a default theme shows).
  await page.locator('.monaco-workbench .part.statusbar [id="status.problems"]').waitFor({ state: 'visible', timeout: 60_000 });
  await page.locator('.monaco-workbench[class*="vscode-theme-"]').waitFor({ state: 'attached', timeout: 60_000 });
  return page;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Raised when the quick input (the command palette, a quick pick) closed before the test could use it. VS
 * Code gives the focus back to the active editor as the palette closes; when that editor is a webview (the
 * instructions), the focus arrives there asynchronously and can close the quick input that opened meanwhile.
 * A participant then opens it again, and so do the helpers below.
 */
class QuickInputClosed extends Error {}

/** What holds the keyboard focus in the workbench, for the message of a QuickInputClosed. */
async function focusOwner(page: Page): Promise<string> {
  return page
    .evaluate(() => {
      const a = document.activeElement;
      if (!a) return 'nothing';
      const label = a.getAttribute('aria-label') ?? a.getAttribute('title') ?? '';
      return `${a.tagName.toLowerCase()}${a.className ? `.${String(a.className).trim().split(/\s+/).join('.')}` : ''}${label ? ` "${label.slice(0, 60)}"` : ''}`;
    })
    .catch(() => 'unknown');
}

async function closedError(page: Page, what: string): Promise<QuickInputClosed> {
  return new QuickInputClosed(`the quick input closed ${what}; the focus is on ${await focusOwner(page)}`);
}

/** Runs `step` on the open quick input; if it fails because the quick input closed, says so (QuickInputClosed). */
async function onOpenQuickInput<T>(page: Page, what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (await quickInput(page).isVisible()) throw e;
    throw await closedError(page, what);
  }
}

/**
 * Waits until `ready` holds while the quick input is open: QuickInputClosed once it has been closed for three
 * seconds together (one quick input closes and the next one, which the extension host may be slow to send,
 * opens in the same widget), false when
 * `timeoutMs` passes without `ready`.
 */
async function readyWhileOpen(page: Page, what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let closedSince: number | undefined;
  for (;;) {
    if (await ready()) return true;
    if (await quickInput(page).isVisible()) closedSince = undefined;
    else if (closedSince === undefined) closedSince = Date.now();
    else if (Date.now() - closedSince > 3_000) throw await closedError(page, what);
    if (Date.now() > deadline) return false;
    await page.waitForTimeout(100);
  }
}

/** Presses Enter in the quick input, if it still has the keyboard focus (it closes a moment after losing it). */
async function acceptQuickInput(page: Page, what: string): Promise<void> {
  const focused = await page.evaluate(() => {
    const widget = document.querySelector('.quick-input-widget');
    return !!widget && getComputedStyle(widget).display !== 'none' && widget.contains(document.activeElement);
  });
  if (!focused) throw await closedError(page, what);
  await page.keyboard.press('Enter');
}

/** Opens a quick input with `open` and uses it with `use`, opening it again (three tries) if it closes first. */
export async function withQuickInput(page: Page, open: () => Promise<void>, use: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await open();
      await use();
      return;
    } catch (e) {
      if (!(e instanceof QuickInputClosed) || attempt >= 3) throw e;
      console.warn(`    (${e.message}: opening it again, try ${attempt + 1})`);
      await page.waitForTimeout(500);
    }
  }
}

/** Runs a command by its palette title (e.g. 'RE-Bench: Connect') through the command palette. */
export async function runCommand(page: Page, title: string, timeoutMs = 15_000): Promise<void> {
  await withQuickInput(
    page,
    async () => {
      await page.keyboard.press('F1');
      await quickInput(page).locator('.quick-input-box input').waitFor({ state: 'visible', timeout: timeoutMs });
    },
    () => chooseCommand(page, title, timeoutMs),
  );
}

/** Types `title` into the open command palette and runs the entry that is exactly it. */
async function chooseCommand(page: Page, title: string, timeoutMs: number): Promise<void> {
  const widget = quickInput(page);
  const input = widget.locator('.quick-input-box input');
  await onOpenQuickInput(page, `before "${title}" was typed`, () => input.fill(`>${title}`, { timeout: Math.min(timeoutMs, 5_000) }));
  // Pick the entry whose label is exactly the title: fuzzy matching may rank another one first.
  const row = widget
    .locator('.monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(title)}\\s*$`) }) })
    .first();
  if (!(await readyWhileOpen(page, `before "${title}" was listed`, () => row.isVisible(), timeoutMs))) {
    const shown = await widget.locator('.monaco-list-row .label-name').allInnerTexts();
    await page.keyboard.press('Escape');
    throw new Error(`Command "${title}" is not in the command palette. Entries shown: ${JSON.stringify(shown.slice(0, 10))}`);
  }
  // The list re-ranks while the palette fills in; a click can then wait forever for the row to hold still.
  // When the exact entry is already the focused one, Enter runs it without depending on the layout.
  const focused = ((await row.getAttribute('class')) ?? '').split(/\s+/).includes('focused');
  if (focused) await acceptQuickInput(page, `before "${title}" was chosen`);
  else await onOpenQuickInput(page, `before "${title}" was chosen`, () => row.click({ timeout: timeoutMs }));
}

/**
 * The content frame of a webview (the document the extension renders), found through VS Code's two
 * iframe levels: `iframe.webview.ready`, then `#active-frame` inside it. With `viewTitle`, only a webview
 * whose title contains it matches.
 */
export async function webviewFrame(page: Page, viewTitle?: string, timeoutMs = 30_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  const seen = new Set<string>();
  for (;;) {
    for (const outer of await page.locator('iframe.webview.ready').elementHandles()) {
      const outerFrame = await outer.contentFrame();
      const inner = await outerFrame?.$('#active-frame');
      if (!inner) continue;
      const title = (await inner.getAttribute('title')) ?? '';
      seen.add(title);
      if (viewTitle !== undefined && !title.includes(viewTitle)) continue;
      const frame = await inner.contentFrame();
      if (frame) return frame;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `No ready webview${viewTitle !== undefined ? ` titled "${viewTitle}"` : ''} within ${timeoutMs} ms. ` + `Webviews seen: ${JSON.stringify([...seen])}`,
      );
    }
    await cs.sleep(200);
  }
}

/**
 * The RE-Bench session view's frame: the webview whose document is the session view (`main.app.layout-view`),
 * since the titles of webview frames are not stable across VS Code versions.
 */
export async function sessionViewFrame(page: Page, timeoutMs = 30_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frame = await webviewFrame(page, undefined, Math.max(1_000, deadline - Date.now()));
    if (await frame.locator('main.app.layout-view').count()) return frame;
    if (Date.now() > deadline) throw new Error('No webview holds the RE-Bench session view.');
    await page.waitForTimeout(200);
  }
}

/** Saves a PNG of the page to .test-output/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const safe = name.replace(/[^\w.-]+/g, '-');
  fs.mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${safe}.png`);
  // Finished animations make screenshots repeatable (a toast mid-fade looks different every run).
  await page.screenshot({ path: file, animations: 'disabled' });
  return file;
}

/** Stops every server started here and closes the browser; use in an after() hook. */
export async function stopAll(): Promise<void> {
  const b = browser;
  browser = undefined;
  await b?.close().catch(() => {});
  await Promise.all([...servers].map((s) => s.stop()));
}

// --- the participant's side: users, profiles, dialogs, notifications, the status bar ------------------

/**
 * A throw-away login user of its own for UI tests, so that other tiers that reset the shared test user's
 * home (test/support/sshd.ts) cannot pull a session from under a running UI test. The private sshd reads
 * one AuthorizedKeysFile for every user, so its client key logs in as this user too. Its session files
 * (~/.rebench, ~/rebench) are removed, so every call starts with no session on the "VM".
 */
export function freshUiLoginUser(name = 'rebench-ui'): { user: string; home: string } {
  const { home } = sshLoginUser(name);
  for (const rel of ['.rebench', 'rebench']) fs.rmSync(path.join(home, rel), { recursive: true, force: true });
  return { user: name, home };
}

/** Writes a session profile (the JSON an organiser hands out) and returns its path. */
export function writeProfile(dir: string, profile: Record<string, unknown>, fileName = 'session-profile.json'): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, fileName);
  fs.writeFileSync(file, `${JSON.stringify(profile, null, 2)}\n`);
  return file;
}

/** The quick input (command palette, quick picks, the web file dialog). */
export function quickInput(page: Page): Locator {
  return page.locator('.quick-input-widget');
}

/**
 * Answers the web workbench's file dialog (a quick input with a path box): types the path and accepts it.
 * This is what a participant does in a browser-based VS Code; the desktop's native dialog is not available.
 */
export async function answerFileDialog(page: Page, filePath: string, timeoutMs = 15_000): Promise<void> {
  const widget = quickInput(page);
  const input = widget.locator('.quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: timeoutMs });
  // The dialog opens on the workspace folder and writes that folder's path into the box once it has listed
  // it, replacing anything typed before then: wait for that first.
  const ready = Date.now() + timeoutMs;
  while (!(await input.inputValue()).endsWith('/') || (await widget.locator('.monaco-list-row').count()) === 0) {
    if (Date.now() > ready) throw new Error(`The file dialog did not show its starting folder within ${timeoutMs} ms.`);
    await page.waitForTimeout(100);
  }
  for (let attempt = 1; ; attempt++) {
    await input.fill(filePath);
    // It lists the folder's entries as the path is typed; Enter before it has caught up is not taken.
    await widget
      .locator('.monaco-list-row', { hasText: path.basename(filePath) })
      .first()
      .waitFor({ state: 'visible', timeout: timeoutMs });
    if ((await input.inputValue()) === filePath) {
      await input.press('Enter');
      try {
        await widget.waitFor({ state: 'hidden', timeout: 3_000 });
        return;
      } catch {
        // Still open: look at what it holds and try again.
      }
    }
    if (attempt >= 3) {
      const value = await input.inputValue().catch(() => '?');
      const rows = await widget
        .locator('.monaco-list-row')
        .allInnerTexts()
        .catch(() => []);
      const message = await widget
        .locator('.quick-input-message')
        .innerText()
        .catch(() => '');
      throw new Error(
        `The file dialog did not accept ${filePath} after ${attempt} tries. Its path box holds ${JSON.stringify(value)}; ` +
          `message ${JSON.stringify(message)}; entries ${JSON.stringify(rows.slice(0, 10))}`,
      );
    }
    console.warn(`    (the file dialog did not take ${filePath} on try ${attempt}; typing it again)`);
  }
}

/**
 * Answers the web workbench's save dialog (a quick input with a path box): once it shows its suggested name
 * (matching `suggested`; typing before that would be overwritten), types `filePath` and accepts it.
 */
export async function answerSaveDialog(page: Page, filePath: string, suggested: RegExp, timeoutMs = 15_000): Promise<void> {
  const input = quickInput(page).locator('.quick-input-box input');
  await onOpenQuickInput(page, 'before the save dialog showed', () => input.waitFor({ state: 'visible', timeout: timeoutMs }));
  const named = () =>
    input.inputValue({ timeout: 1_000 }).then(
      (v) => suggested.test(v),
      () => false,
    );
  if (!(await readyWhileOpen(page, `before the save dialog suggested a name like ${String(suggested)}`, named, timeoutMs))) {
    throw new Error(
      `The save dialog did not suggest a name like ${String(suggested)} within ${timeoutMs} ms; it holds ${JSON.stringify(await input.inputValue())}.`,
    );
  }
  await onOpenQuickInput(page, `before ${filePath} was typed`, () => input.fill(filePath, { timeout: 5_000 }));
  await page.waitForTimeout(300);
  await acceptQuickInput(page, `before ${filePath} was accepted`);
}

/**
 * Picks the quick pick entry whose label contains `label` (the quick pick must be open or opening). With
 * `filter`, types it first, as a participant narrows a long list (only visible rows can be clicked).
 */
export async function pickQuickPickItem(page: Page, label: string | RegExp, options: { filter?: string; timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const widget = quickInput(page);
  if (options.filter !== undefined) {
    const input = widget.locator('.quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: timeoutMs });
    await onOpenQuickInput(page, `before ${JSON.stringify(options.filter)} was typed`, () =>
      input.fill(options.filter!, { timeout: Math.min(timeoutMs, 5_000) }),
    );
  }
  const row = widget
    .locator('.monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: label }) })
    .first();
  if (!(await readyWhileOpen(page, `before ${String(label)} was listed`, () => row.isVisible(), timeoutMs))) {
    const shown = await widget.locator('.monaco-list-row .label-name').allInnerTexts();
    throw new Error(`No quick pick entry ${String(label)}. Entries shown: ${JSON.stringify(shown)}`);
  }
  await onOpenQuickInput(page, `before ${String(label)} was picked`, () => row.click({ timeout: timeoutMs }));
}

/** Runs a command that opens a quick pick and picks `label` in it, running the command again if the pick closes first. */
export async function runCommandAndPick(
  page: Page,
  title: string,
  label: string | RegExp,
  options: { filter?: string; timeoutMs?: number } = {},
): Promise<void> {
  await withQuickInput(
    page,
    () => runCommand(page, title),
    () => pickQuickPickItem(page, label, options),
  );
}

/** A notification toast whose message contains `text`. */
export function notification(page: Page, text: string | RegExp): Locator {
  return page.locator('.notifications-toasts .notification-toast').filter({ has: page.locator('.notification-list-item-message', { hasText: text }) });
}

/** Every notification message shown now (toasts), for assertions and error messages. */
export async function notificationTexts(page: Page): Promise<string[]> {
  return page.locator('.notifications-toasts .notification-list-item-message').allInnerTexts();
}

/** Waits for a toast containing `text` and clicks its button labelled `button`. */
export async function clickNotificationButton(page: Page, text: string | RegExp, button: string, timeoutMs = 15_000): Promise<void> {
  const toast = notification(page, text);
  try {
    await toast.first().waitFor({ state: 'visible', timeout: timeoutMs });
  } catch {
    throw new Error(`No notification ${String(text)} within ${timeoutMs} ms. Shown: ${JSON.stringify(await notificationTexts(page))}`);
  }
  await toast.first().locator('.monaco-button', { hasText: button }).click();
}

/** The modal dialog box (showInformationMessage with modal: true renders one in the web workbench). */
export function modalDialog(page: Page): Locator {
  return page.locator('.monaco-dialog-box');
}

/** The status bar entry of an extension's item, found by the start of its accessible label. */
export function statusBarEntry(page: Page, ariaLabelStart: string): Locator {
  return page
    .locator(`.part.statusbar .statusbar-item a[aria-label^="${ariaLabelStart}"], .part.statusbar .statusbar-item[aria-label^="${ariaLabelStart}"]`)
    .first();
}

/** Saves a PNG of one element (e.g. the side bar holding the session view) and returns its path. */
export async function screenshotOf(locator: Locator, name: string): Promise<string> {
  const safe = name.replace(/[^\w.-]+/g, '-');
  fs.mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${safe}.png`);
  await locator.screenshot({ path: file, animations: 'disabled' });
  return file;
}

/** Reloads the window the way a participant does ("Developer: Reload Window") and waits for the workbench. */
export async function reloadWindow(page: Page): Promise<void> {
  const navigated = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame(), timeout: 30_000 });
  await runCommand(page, 'Developer: Reload Window');
  await navigated;
  await page.waitForLoadState('domcontentloaded');
  await page.locator('.monaco-workbench .part.statusbar [id="status.problems"]').waitFor({ state: 'visible', timeout: 60_000 });
}

/** `typeof window[name]` in every frame of the page (webviews included), keyed by frame URL. */
export async function globalInEveryFrame(page: Page, name: string): Promise<{ url: string; type: string }[]> {
  const out: { url: string; type: string }[] = [];
  for (const frame of page.frames()) {
    try {
      const type = await frame.evaluate((n) => typeof (window as unknown as Record<string, unknown>)[n], name);
      out.push({ url: frame.url(), type });
    } catch (e) {
      // A frame that navigated away while we looked has nothing left to check.
      out.push({ url: frame.url(), type: `gone (${e instanceof Error ? e.message.split('\n')[0] : String(e)})` });
    }
  }
  return out;
}
