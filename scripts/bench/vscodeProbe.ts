// Runs inside the real extension host (loaded as the workbench's extensionTestsPath, bundled by the bench):
// drives the extension through its own commands as the session view's buttons do, and measures the
// extension host's memory. The bench outside times the session view's rendering meanwhile; the two take
// turns through marks in a shared folder (handshake.ts).
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as vscode from 'vscode';
import type { ExtensionApi } from '../../src/extension';
import type { ConnectionChoice } from '../../src/ui/targets';
import { mark, waitForMark } from './handshake';

export interface ProbeConfig {
  dir: string;
  choice: ConnectionChoice;
  /** Score now runs of the simulated 8-hour session. */
  scores: number;
  /** Status refreshes of the simulated session (one per refresh interval). */
  refreshes: number;
  /** Score now runs while the bench times the rendering of the 10,000-entry history. */
  renderScores: number;
}

export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface MemoryResult {
  before: MemorySample[];
  after: MemorySample[];
  /** One reading after every `checkpointEvery` Score now runs: whether the growth levels off or keeps on. */
  checkpoints: { scores: number; refreshes: number; sample: MemorySample }[];
  scores: number;
  refreshes: number;
  entries: number;
  durationS: number;
}

const EXTENSION_ID = 'rebench-tools.rebench-session';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A full garbage collection; the extension host does not expose gc(), so the flag is turned on here. */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  return () => {
    gc();
    gc();
  };
}

function reading(gc: () => void): MemorySample {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

/**
 * Five readings after full collections, a little apart: what the extension host holds, not garbage. V8
 * hands freed pages back to the system a while after a collection, so the readings wait until the
 * resident size stops falling (at most 30 s), as it does in the idle hours of a session.
 */
async function memory(gc: () => void): Promise<MemorySample[]> {
  let previous = reading(gc).rss;
  for (let i = 0; i < 30; i++) {
    await sleep(1000);
    const rss = reading(gc).rss;
    if (previous - rss < 500_000) break;
    previous = rss;
  }
  const samples: MemorySample[] = [];
  for (let i = 0; i < 5; i++) {
    await sleep(300);
    samples.push(reading(gc));
  }
  return samples;
}

async function probe(config: ProbeConfig): Promise<void> {
  const ext = vscode.extensions.getExtension<ExtensionApi>(EXTENSION_ID);
  if (!ext) throw new Error(`The extension ${EXTENSION_ID} is not loaded in this extension host.`);
  const api = await ext.activate();
  const gc = collector();
  const { dir, choice } = config;

  // The simulated session: connect, start, then as many Score now runs and status refreshes as 8 hours
  // bring, back to back, with the session view open.
  await vscode.commands.executeCommand('rebench.connect', choice);
  await vscode.commands.executeCommand('rebench.startSession', { confirmed: true });
  await vscode.commands.executeCommand('rebench.sessionView.focus');
  await sleep(3000);
  const before = await memory(gc);
  const started = Date.now();
  const checkpoints: MemoryResult['checkpoints'] = [];
  const checkpointEvery = Math.max(1, Math.round(config.scores / 5));
  let refreshes = 0;
  for (let i = 0; i < config.scores; i++) {
    await vscode.commands.executeCommand('rebench.scoreNow');
    const due = Math.round(((i + 1) * config.refreshes) / config.scores);
    for (; refreshes < due; refreshes++) {
      const session = api.controller.current;
      if (!session) throw new Error('The session closed during the simulated 8 hours.');
      // The call the refresh timer makes every statusRefreshSeconds.
      await session.refresh();
    }
    if ((i + 1) % checkpointEvery === 0) checkpoints.push({ scores: i + 1, refreshes, sample: reading(gc) });
  }
  const durationS = (Date.now() - started) / 1000;
  await sleep(3000);
  const after = await memory(gc);
  const entries = api.controller.current?.entries.length ?? 0;
  const result: MemoryResult = { before, after, checkpoints, scores: config.scores, refreshes, entries, durationS };
  mark(dir, 'memory', result);

  // The 10,000-entry history: the bench replaces the VM's score log, the extension connects to it, and
  // each Score now adds an entry that the session view renders with all the others.
  await api.controller.disconnect(true);
  mark(dir, 'render-prepare');
  await waitForMark(dir, 'render-prepared', 300_000);
  await vscode.commands.executeCommand('rebench.connect', choice);
  await vscode.commands.executeCommand('rebench.sessionView.focus');
  const loaded = api.controller.current?.entries.length ?? 0;
  mark(dir, 'render-ready', { entries: loaded });
  await waitForMark(dir, 'render-listening', 120_000);
  for (let i = 0; i < config.renderScores; i++) {
    await vscode.commands.executeCommand('rebench.scoreNow');
    // Lets the view finish one rendering before the next entry comes.
    await sleep(700);
  }
  mark(dir, 'render-done', { entries: api.controller.current?.entries.length ?? 0 });
  await waitForMark(dir, 'finish', 120_000);
  await api.controller.disconnect(true);
}

/** Called by the extension host's test runner with the workbench's extensionTestsPath. */
export async function run(): Promise<void> {
  const file = process.env.REBENCH_BENCH_PROBE;
  if (!file) throw new Error('REBENCH_BENCH_PROBE is not set: this module is run by scripts/bench.ts.');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as ProbeConfig;
  try {
    await probe(config);
  } catch (e) {
    mark(config.dir, 'error', { message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    throw e;
  }
}
