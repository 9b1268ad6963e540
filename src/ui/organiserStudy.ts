// The organiser's study commands in VS Code: Watch Study (a panel with every VM, redrawn after each refresh
// and every few seconds for the countdowns, with the flags also written to a file), and giving time back
// (extend, infrastructure pause). They run the core of the command-line tool (dist/organiser.js).
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ExtensionLog } from './extensionLog';
import { renderWebviewHtml, webviewResourceRoots } from './webviewHtml';

type OrganiserBundle = typeof import('../organiser/cli');
type HostSpec = ReturnType<OrganiserBundle['loadHostSpecs']>['specs'][number];

export interface WatchStudyArgs {
  inputs?: string[];
  intervalS?: number;
  flagsFile?: string;
  /** The administrator's login for protected VMs: read over it, they give their hidden scores too. */
  admin?: string;
}

export interface GrantArgs {
  input?: string;
  kind?: 'extend' | 'infrastructure-pause';
  minutes?: number;
  from?: string;
  to?: string;
  reason?: string;
  admin?: string;
}

function knownHostsFiles(context: vscode.ExtensionContext): string[] {
  // Host keys the organiser accepted when connecting with this extension count as known.
  return [path.join(os.homedir(), '.ssh', 'known_hosts'), vscode.Uri.joinPath(context.globalStorageUri, 'known_hosts').fsPath];
}

async function loadSpecs(organiser: OrganiserBundle, inputs: string[], log: ExtensionLog, what: string): Promise<HostSpec[] | undefined> {
  const { specs, errors } = organiser.loadHostSpecs(inputs);
  if (errors.length) {
    for (const e of errors) log.error(e);
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more: Show Log lists them)` : '';
    const answer = await vscode.window.showErrorMessage(`RE-Bench: ${what}: ${errors[0]}${more}`, 'Show Log');
    if (answer === 'Show Log') log.show();
    return undefined;
  }
  return specs;
}

/** Opens the Watch Study panel; it refreshes until it is closed. Resolves with the panel. */
export async function watchStudyCommand(
  given: WatchStudyArgs | undefined,
  organiser: OrganiserBundle,
  context: vscode.ExtensionContext,
  log: ExtensionLog,
  pickInputs: (openLabel: string) => Promise<string[] | undefined>,
): Promise<vscode.WebviewPanel | undefined> {
  const inputs = given?.inputs ?? (await pickInputs('Watch'));
  if (!inputs?.length) return undefined;
  const specs = await loadSpecs(organiser, inputs, log, 'nothing to watch');
  if (!specs) return undefined;
  await vscode.workspace.fs.createDirectory(context.globalStorageUri);
  const flagsFile = given?.flagsFile ?? vscode.Uri.joinPath(context.globalStorageUri, 'watch-flags.json').fsPath;
  const panel = vscode.window.createWebviewPanel('rebench.watchStudy', 'Watch Study', vscode.ViewColumn.Active, {
    enableScripts: false,
    localResourceRoots: webviewResourceRoots(context.extensionUri),
    retainContextWhenHidden: false,
  });
  const abort = new AbortController();
  let reading: { finished: number; total: number } | undefined = { finished: 0, total: specs.length };
  const watch = new organiser.StudyWatch(specs, {
    intervalS: given?.intervalS,
    admin: given?.admin,
    knownHostsFiles: knownHostsFiles(context),
    flagsFile,
    signal: abort.signal,
    onProgress: (finished, total) => {
      reading = { finished, total };
    },
    onSnapshot: (s) => {
      reading = undefined;
      for (const p of watch.problems) log.warn(p);
      for (const f of s.flags) log.warn(`Watch Study: ${f.code} ${f.participant} (${f.host}): ${f.message}`);
      draw();
    },
  });
  const draw = () => {
    if (abort.signal.aborted) return;
    const snapshot = watch.snapshot();
    panel.title = snapshot ? `Watch Study (${snapshot.flags.length} flag${snapshot.flags.length === 1 ? '' : 's'})` : 'Watch Study';
    panel.webview.html = renderWebviewHtml({
      webview: panel.webview,
      extensionUri: context.extensionUri,
      title: 'Watch Study',
      stylePath: 'media/watchStudy.css',
      bodyHtml: organiser.watchBodyHtml(snapshot, watch.rows(), Date.now(), { flagsFile, reading, nextRefreshMs: watch.nextRefreshMs() }),
    });
  };
  // Time left and contact ages move on between refreshes.
  const ticker = setInterval(draw, 5000);
  panel.onDidDispose(() => {
    abort.abort();
    clearInterval(ticker);
  });
  draw();
  log.info(`Watch Study: ${specs.length} host(s), a refresh every ${watch.intervalMs / 1000} s; flags in ${flagsFile}.`);
  void watch.run(abort.signal).catch((e: unknown) => log.error(`Watch Study stopped: ${e instanceof Error ? e.message : String(e)}`));
  return panel;
}

const ISO_WITH_ZONE = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/;

/** Extend or infrastructure pause, over the administrator's login; resolves with the runner's answer. */
export async function grantCommand(
  kind: 'extend' | 'infrastructure-pause',
  given: GrantArgs | undefined,
  organiser: OrganiserBundle,
  context: vscode.ExtensionContext,
  log: ExtensionLog,
): Promise<unknown> {
  const title = kind === 'extend' ? 'RE-Bench: give a participant more time' : 'RE-Bench: record an infrastructure pause';
  let input = given?.input;
  if (!input) {
    const picked = await vscode.window.showOpenDialog({
      title: `${title}: the participant's session profile`,
      canSelectFiles: true,
      canSelectMany: false,
      filters: { 'Session profile': ['json'] },
      openLabel: 'This Participant',
    });
    input = picked?.[0]?.fsPath;
  }
  if (!input) return undefined;
  const specs = await loadSpecs(organiser, [input], log, 'no time was given');
  if (!specs) return undefined;
  if (specs.length !== 1) {
    void vscode.window.showErrorMessage(`RE-Bench: ${input} names ${specs.length} VMs; give time to one participant at a time (their profile).`);
    return undefined;
  }
  const spec = specs[0]!;
  const ask = async (prompt: string, validate: (v: string) => string | undefined, value?: string) =>
    vscode.window.showInputBox({ title, prompt, value, ignoreFocusOut: true, validateInput: (v) => validate(v.trim()) ?? null });
  let request: Parameters<OrganiserBundle['grantTime']>[1];
  const reasonCheck = (v: string) => (v ? (v.length > 500 ? 'At most 500 characters.' : undefined) : 'Say why: it is recorded, and the participant sees it.');
  if (kind === 'extend') {
    const minutes =
      given?.minutes ??
      Number(
        await ask(
          'Minutes to add to the deadline',
          (v) => (Number(v) > 0 && Number(v) <= 1440 ? undefined : 'A number of minutes, more than 0 and at most 1440.'),
          '30',
        ),
      );
    if (!Number.isFinite(minutes) || minutes <= 0) return undefined;
    const reason = given?.reason ?? (await ask('Why (recorded, and shown to the participant)', reasonCheck));
    if (!reason) return undefined;
    request = { kind, minutes, reason };
  } else {
    const timeCheck = (v: string) =>
      ISO_WITH_ZONE.test(v) && !Number.isNaN(Date.parse(v)) ? undefined : 'An ISO 8601 time with its zone, e.g. 2026-03-01T10:15:00Z.';
    const from = given?.from ?? (await ask('When the outage began (ISO 8601, UTC: ...Z)', timeCheck));
    if (!from) return undefined;
    const to = given?.to ?? (await ask('When it ended (ISO 8601; not in the future)', timeCheck, new Date().toISOString().slice(0, 19) + 'Z'));
    if (!to) return undefined;
    const reason = given?.reason ?? (await ask('Why (recorded, and shown to the participant)', reasonCheck));
    if (!reason) return undefined;
    request = { kind, from: from.trim(), to: to.trim(), reason };
  }
  let admin = given?.admin;
  if (spec.protectedMode && !admin) {
    admin = await ask(
      `${spec.participant}'s VM is protected: the administrator's login there (root, or a user with passwordless sudo)`,
      (v) => (/^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(v) ? undefined : 'A user name.'),
      'root',
    );
    if (!admin) return undefined;
  }
  const outcome = await organiser.grantTime(spec, request, { admin, knownHostsFiles: knownHostsFiles(context) });
  for (const line of organiser.grantSummary(spec, outcome)) log.info(line);
  const lines = organiser.grantSummary(spec, outcome);
  void vscode.window.showInformationMessage(`RE-Bench: ${lines.join(' ')}`);
  return outcome.status;
}
