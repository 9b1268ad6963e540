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
import type { Browser, Frame, Page } from 'playwright-core';
import * as cs from '../../scripts/codeServer.mjs';

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
export async function startCodeServerWithVsix(
  vsixPath: string = defaultVsixPath,
  options: WorkbenchOptions = {},
): Promise<WorkbenchServer> {
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

/** Runs a command by its palette title (e.g. 'RE-Bench: Connect') through the command palette. */
export async function runCommand(page: Page, title: string, timeoutMs = 15_000): Promise<void> {
  await page.keyboard.press('F1');
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('.quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: timeoutMs });
  await input.fill(`>${title}`);
  // Pick the entry whose label is exactly the title: fuzzy matching may rank another one first.
  const row = widget
    .locator('.monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(title)}\\s*$`) }) })
    .first();
  try {
    await row.waitFor({ state: 'visible', timeout: timeoutMs });
  } catch {
    const shown = await widget.locator('.monaco-list-row .label-name').allInnerTexts();
    await page.keyboard.press('Escape');
    throw new Error(`Command "${title}" is not in the command palette. Entries shown: ${JSON.stringify(shown.slice(0, 10))}`);
  }
  await row.click();
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
        `No ready webview${viewTitle !== undefined ? ` titled "${viewTitle}"` : ''} within ${timeoutMs} ms. ` +
          `Webviews seen: ${JSON.stringify([...seen])}`,
      );
    }
    await cs.sleep(200);
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
