// The figures from a real VS Code (code-server in headless Chromium, as the UI tests use it): activation as
// VS Code itself times it, the session view's rendering of a 10,000-entry history, and the extension
// host's memory over a simulated 8-hour session.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import type { Frame, Page } from 'playwright-core';
import { silentLogger } from '../../src/core/logger';
import { RunnerClient } from '../../src/core/runnerClient';
import { SshTarget } from '../../src/core/ssh/sshTarget';
import { shellQuote } from '../../src/core/target';
import { openWorkbench, runCommand, startCodeServerWithVsix, stopAll, webviewFrame } from '../../test/ui/harness';
import { resetUserHome, startSshd, type Sshd } from '../../test/support/sshd';
import * as cs from '../codeServer.mjs';
import { makeFigure, summarize, type Figure } from './figures';
import { mark, waitForMark } from './handshake';
import { NOOP_ENVIRONMENT, NOOP_SOURCE, RUNNER_SOURCE } from './ssh';
import type { MemoryResult, MemorySample, ProbeConfig } from './vscodeProbe';

const repo = path.resolve(__dirname, '../..');
const EXTENSION_ID = 'rebench-tools.rebench-session';
/** Decimal megabytes, as the targets are written (a mebibyte would make every figure about 5% smaller). */
const MB = 1_000_000;

export interface VsCodeReps {
  activation: number;
  scores: number;
  refreshes: number;
  renderScores: number;
  historyEntries: number;
}

// --- activation -------------------------------------------------------------------------------------

export interface ActivationTimes {
  loadCode: number;
  callActivate: number;
  finishActivate: number;
}

/** Our row of the "Extension Activation Stats" table in VS Code's Developer: Startup Performance. */
export function parseActivationRow(text: string, extensionId = EXTENSION_ID): ActivationTimes | undefined {
  const id = extensionId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^\\|\\s*${id}\\s*\\|\\s*(?:true|false)\\s*\\|\\s*(\\d+)\\s*\\|\\s*(\\d+)\\s*\\|\\s*(\\d+)\\s*\\|`, 'm').exec(text);
  return m ? { loadCode: Number(m[1]), callActivate: Number(m[2]), finishActivate: Number(m[3]) } : undefined;
}

/** The extension host processes of a code-server (its own process group), by their command line. */
function extensionHosts(groupId: number): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgrp !== groupId) continue;
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('--type=extensionHost')) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function startupPerformance(page: Page, timeoutMs = 60_000): Promise<ActivationTimes> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await runCommand(page, 'Developer: Startup Performance');
    const editor = page.locator('.editor-instance .monaco-editor .view-lines').first();
    await editor.waitFor({ state: 'visible', timeout: 15_000 });
    await page.waitForTimeout(500);
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Control+C');
    const text = await page.evaluate(() => navigator.clipboard.readText());
    const row = parseActivationRow(text);
    if (row) return row;
    if (Date.now() > deadline) throw new Error(`${EXTENSION_ID} did not appear in Developer: Startup Performance within ${timeoutMs / 1000} s.`);
    // Not activated yet (it activates once start-up has finished): close the report and look again.
    await page.keyboard.press('Control+W');
    await page.waitForTimeout(1000);
  }
}

/** Opens `reps` fresh windows on a code-server with the VSIX installed and reads VS Code's activation times. */
async function measureActivation(reps: number, log: (line: string) => void): Promise<ActivationTimes[]> {
  const vsix = path.join(repo, 'dist/rebench-session.vsix');
  const ws = await startCodeServerWithVsix(vsix);
  const times: ActivationTimes[] = [];
  try {
    for (let i = 0; i < reps; i++) {
      const page = await openWorkbench(ws.url);
      try {
        await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ws.server.origin });
        const t = await startupPerformance(page);
        log(`vscode: window ${i + 1}/${reps}: load code ${t.loadCode} ms, call activate ${t.callActivate} ms, finish activate ${t.finishActivate} ms`);
        times.push(t);
      } finally {
        await page.context().close();
      }
      // A closed window's extension host waits hours for it to come back; it would only load the machine.
      for (const pid of extensionHosts(ws.server.process.pid!)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  } finally {
    await ws.stop();
    await stopAll(); // the harness's browser, which would otherwise keep this process alive
  }
  return times;
}

// --- the session: memory and rendering --------------------------------------------------------------

async function buildProbe(): Promise<string> {
  const outFile = path.join(repo, 'out/bench/probe.js');
  await esbuild.build({
    entryPoints: [path.join(__dirname, 'vscodeProbe.ts')],
    outfile: outFile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
    external: ['vscode', 'cpu-features', '*.node'],
  });
  return outFile;
}

/**
 * Replaces the VM's runner home with a session started `hoursAgo` hours ago whose score log holds `entries`
 * entries, written with the runner's own hash chain (make_score_log.py), as the login user.
 */
async function prepareLongLog(sshd: Sshd, entries: number, hoursAgo: number): Promise<void> {
  resetUserHome();
  const target = new SshTarget({
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    identityFiles: [sshd.clientKeyPath],
    pinnedFingerprint: sshd.hostFingerprint,
    agent: false,
  });
  try {
    await target.connect();
    const client = new RunnerClient({
      target,
      environmentId: NOOP_ENVIRONMENT,
      runnerSource: RUNNER_SOURCE,
      environmentSource: NOOP_SOURCE,
      protectedMode: false,
      logger: silentLogger,
    });
    await client.ensureRunnerSetUp();
    const home = await target.home();
    const script = `${home}/.rebench-bench/make_score_log.py`;
    await target.writeFile(script, fs.readFileSync(path.join(__dirname, 'make_score_log.py')), 0o644);
    const r = await target.exec(
      `python3 ${shellQuote(script)} ${shellQuote(`${home}/.rebench/runner.pyz`)} ${shellQuote(`${home}/.rebench`)} ${entries} ${hoursAgo}`,
    );
    if (r.code !== 0) throw new Error(`Writing the ${entries}-entry score log failed: ${r.stderr || r.stdout}`);
  } finally {
    target.dispose();
  }
}

interface RenderRecord {
  entries: number;
  grew: boolean;
  handlerMs: number;
  frameMs: number;
}

/** The session view's document: the webview whose app is laid out as the view (not the history panel). */
async function sessionViewFrame(page: Page, timeoutMs = 60_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frame = await webviewFrame(page, undefined, Math.max(1_000, deadline - Date.now()));
    if (await frame.locator('main.app.layout-view').count()) return frame;
    if (Date.now() > deadline) throw new Error('No webview holds the RE-Bench session view.');
    await page.waitForTimeout(200);
  }
}

/**
 * Times, in the session view's own document, each snapshot the extension posts: from the message event's
 * creation (its timeStamp, taken as the event is dispatched) to the end of the view's own handler (this
 * listener is added after the view's, and Chromium calls a target's listeners in the order they were
 * added), and to the next frame painted after it.
 */
async function listenForRenders(frame: Frame): Promise<void> {
  await frame.evaluate(() => {
    const w = window as unknown as { benchRenders: unknown[] };
    w.benchRenders = [];
    let last = -1;
    window.addEventListener('message', (event: MessageEvent) => {
      const handled = performance.now();
      const data = event.data as { type?: string; snapshot?: { entries?: unknown[] }; entriesFrom?: number } | null;
      if (!data || data.type !== 'snapshot' || !Array.isArray(data.snapshot?.entries)) return;
      // A snapshot may carry only the entries the view does not have yet (from entriesFrom on).
      const entries = (typeof data.entriesFrom === 'number' ? data.entriesFrom : 0) + data.snapshot.entries.length;
      const grew = last >= 0 && entries > last;
      last = entries;
      const t0 = event.timeStamp;
      requestAnimationFrame(() => setTimeout(() => w.benchRenders.push({ entries, grew, handlerMs: handled - t0, frameMs: performance.now() - t0 }), 0));
    });
  });
}

interface SessionResults {
  memory: MemoryResult;
  renders: RenderRecord[];
  historyEntries: number;
}

async function measureSession(reps: VsCodeReps, log: (line: string) => void): Promise<SessionResults> {
  const probeFile = await buildProbe();
  const sshd = await startSshd();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-bench-vscode-'));
  const dir = path.join(scratch, 'marks');
  fs.mkdirSync(dir);
  let server: cs.CodeServer | undefined;
  let browser: Awaited<ReturnType<typeof cs.launchChromium>> | undefined;
  try {
    resetUserHome();
    const config: ProbeConfig = {
      dir,
      choice: {
        kind: 'ssh',
        name: 'bench VM',
        host: sshd.host,
        port: sshd.port,
        user: sshd.user,
        fingerprint: sshd.hostFingerprint,
        identityFile: sshd.clientKeyPath,
        environmentId: NOOP_ENVIRONMENT,
        protectedMode: false,
      },
      scores: reps.scores,
      refreshes: reps.refreshes,
      renderScores: reps.renderScores,
    };
    const configFile = path.join(scratch, 'probe.json');
    fs.writeFileSync(configFile, JSON.stringify(config));
    server = await cs.startCodeServer({
      smokeTestDriver: true,
      env: { REBENCH_BENCH_PROBE: configFile },
      settings: { 'rebench.environmentsFolder': path.join(repo, 'test/fixtures/environments'), 'rebench.reconnect.onStartup': false },
    });
    const payload: cs.WorkbenchPayload = [
      ['extensionDevelopmentPath', cs.remoteUri(server.authority, repo)],
      ['extensionTestsPath', cs.remoteUri(server.authority, probeFile)],
    ];
    browser = await cs.launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    let exitCode: number | undefined;
    const output: string[] = [];
    await page.exposeFunction('codeAutomationExit', (code: unknown) => {
      exitCode = typeof code === 'number' ? code : 1;
    });
    await page.exposeFunction('codeAutomationLog', (_type: unknown, args: unknown) => {
      output.push(Array.isArray(args) ? args.map(String).join(' ') : String(args));
      if (output.length > 200) output.shift();
    });
    await page.goto(server.workbenchUrl({ payload }), { waitUntil: 'domcontentloaded', timeout: 60_000 });

    log(`vscode: simulated 8-hour session: ${reps.scores} Score now runs and ${reps.refreshes} status refreshes`);
    const memory = await waitForMark<MemoryResult>(dir, 'memory', 30 * 60_000);
    log(`vscode: the simulated session took ${memory.durationS.toFixed(0)} s and left ${memory.entries} entries`);

    await waitForMark(dir, 'render-prepare', 120_000);
    log(`vscode: writing a ${reps.historyEntries}-entry score log on the VM`);
    await prepareLongLog(sshd, reps.historyEntries, 7.5);
    mark(dir, 'render-prepared');
    const ready = await waitForMark<{ entries: number }>(dir, 'render-ready', 300_000);
    if (ready.entries !== reps.historyEntries) throw new Error(`The extension shows ${ready.entries} entries, not ${reps.historyEntries}.`);
    const frame = await sessionViewFrame(page);
    await frame.locator('.chart-area svg').first().waitFor({ state: 'attached', timeout: 60_000 });
    await listenForRenders(frame);
    log(`vscode: ${reps.renderScores} new entries into the ${reps.historyEntries}-entry history, each rendered by the session view`);
    mark(dir, 'render-listening');
    await waitForMark(dir, 'render-done', 300_000);
    await page.waitForTimeout(1000);
    const renders = (await frame.evaluate(() => (window as unknown as { benchRenders: RenderRecord[] }).benchRenders)) ?? [];
    mark(dir, 'finish');
    const deadline = Date.now() + 60_000;
    while (exitCode === undefined && Date.now() < deadline) await page.waitForTimeout(100);
    if (exitCode !== 0) throw new Error(`The probe ended with ${exitCode ?? 'no exit code'}; extension host output:\n${output.slice(-30).join('\n')}`);
    return { memory, renders, historyEntries: reps.historyEntries };
  } finally {
    await browser?.close().catch(() => undefined);
    await server?.stop();
    await sshd.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function median(samples: MemorySample[], key: keyof MemorySample): number {
  return summarize(samples.map((s) => s[key])).median;
}

const mb = (bytes: number) => Math.round((bytes / MB) * 10) / 10;

function inMB(sample: MemorySample): Record<keyof MemorySample, number> {
  return {
    rss: mb(sample.rss),
    heapUsed: mb(sample.heapUsed),
    heapTotal: mb(sample.heapTotal),
    external: mb(sample.external),
    arrayBuffers: mb(sample.arrayBuffers),
  };
}

function medianSample(samples: MemorySample[]): MemorySample {
  return {
    rss: median(samples, 'rss'),
    heapUsed: median(samples, 'heapUsed'),
    heapTotal: median(samples, 'heapTotal'),
    external: median(samples, 'external'),
    arrayBuffers: median(samples, 'arrayBuffers'),
  };
}

export async function measureVsCode(reps: VsCodeReps, log: (line: string) => void): Promise<Figure[]> {
  log(`vscode: activation in ${reps.activation} fresh windows of code-server with the VSIX installed`);
  const activation = await measureActivation(reps.activation, log);
  const session = await measureSession(reps, log);

  const ms = (name: string, values: number[]) => ({ name, unit: 'ms', summary: summarize(values) });
  const figures: Figure[] = [];
  const grown = session.renders.filter((r) => r.grew && r.entries > session.historyEntries);
  if (grown.length === 0) throw new Error(`The session view rendered no new entry (${session.renders.length} snapshots seen).`);
  figures.push(
    makeFigure(
      'render',
      ms(
        `render the ${session.historyEntries.toLocaleString('en')}-entry history in the session view (new entry arrives → next frame painted)`,
        grown.map((r) => r.frameMs),
      ),
      {
        target: { kind: 'value', max: 200 },
        details: {
          handlerMs: grown.map((r) => Math.round(r.handlerMs * 10) / 10),
          frameMs: grown.map((r) => Math.round(r.frameMs * 10) / 10),
          snapshotsSeen: session.renders.length,
        },
      },
    ),
    makeFigure(
      'activation',
      ms(
        'extension activation, activate start to ready (VS Code: call + finish activate)',
        activation.map((a) => a.callActivate + a.finishActivate),
      ),
      {
        target: { kind: 'value', max: 50 },
        details: { windows: activation },
      },
    ),
    makeFigure(
      'activation-load',
      ms(
        'extension code loading before activate (VS Code: load code)',
        activation.map((a) => a.loadCode),
      ),
    ),
  );
  const { before, after, checkpoints } = session.memory;
  const b = medianSample(before);
  const a = medianSample(after);
  const label = `${session.memory.scores} Score now runs and ${session.memory.refreshes} status refreshes`;
  const details = {
    before: inMB(b),
    after: inMB(a),
    checkpoints: checkpoints.map((c) => ({ scores: c.scores, refreshes: c.refreshes, ...inMB(c.sample) })),
    simulatedSessionS: Math.round(session.memory.durationS),
  };
  figures.push(
    makeFigure(
      'memory-rss',
      { name: `extension-host memory (RSS) added by a simulated 8-hour session: ${label}`, unit: 'MB', summary: summarize([(a.rss - b.rss) / MB]) },
      {
        target: { kind: 'value', max: 30 },
        details,
      },
    ),
    makeFigure('memory-heap', {
      name: 'the same, JS heap + external memory kept after a full collection',
      unit: 'MB',
      summary: summarize([(a.heapUsed + a.external - b.heapUsed - b.external) / MB]),
    }),
  );
  return figures;
}
