// "RE-Bench Organiser: Prepare VM…": asks for what src/organiser/prepare.ts needs, runs it with a cancellable
// progress notification, and offers the written profile. The organiser code is loaded on first use.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PrepareOptions, PrepareResult } from '../organiser/prepare';
import type { ExtensionLog } from './extensionLog';

export interface PrepareModule {
  prepareVm(options: PrepareOptions): Promise<PrepareResult>;
}

/** What a script or test may pass to skip the questions; anything left out is asked. */
export interface PrepareVmArgs {
  host?: string;
  port?: number;
  admin?: string;
  identityFiles?: string[];
  participant?: string;
  environmentDir?: string;
  /** A METR Task Standard family folder instead of environmentDir, with its task and reference score. */
  metrFamilyDir?: string;
  task?: string;
  referenceScore?: number;
  /** NAME=VALUE lines for the family's required environment variables; null: none (not asked). */
  secretsFile?: string | null;
  /** Where the family is copied on the VM (default /root, as METR's image). */
  metrFamilyRoot?: string;
  /** End-scoring families: the score of a trivial answer, and the regular expression an answer must match ('' for none). */
  startingScore?: number;
  answerPattern?: string;
  answerFormat?: string;
  profilePath?: string;
  scoringUser?: string;
  hostKeyFingerprint?: string;
  /** Trust an unknown host key without asking (scripts and tests only). */
  acceptNewHostKey?: boolean;
  knownHostsFiles?: string[];
}

const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

function defaultKeys(): string[] {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(os.homedir(), '.ssh', f)).filter((f) => fs.existsSync(f));
}

async function ask(prompt: string, value: string, validate: (v: string) => string | undefined, placeHolder?: string): Promise<string | undefined> {
  const answer = await vscode.window.showInputBox({
    title: 'RE-Bench: prepare a VM',
    prompt,
    value,
    placeHolder,
    ignoreFocusOut: true,
    validateInput: (v) => validate(v.trim()),
  });
  return answer?.trim();
}

/** Whether a family scores one submitted answer at the end: its <family>.py defines score and no intermediate_score
 * (read, never run, here; the VM's describe call decides, and prepare asks again for what is missing). */
function scoresAtTheEnd(familyDir: string): boolean {
  try {
    const text = fs.readFileSync(path.join(familyDir, `${path.basename(path.resolve(familyDir))}.py`), 'utf8');
    return /\bdef\s+score\s*\(/.test(text) && !/\bdef\s+intermediate_score\s*\(/.test(text);
  } catch {
    return false;
  }
}

async function askAll(given: PrepareVmArgs, extensionPath: string): Promise<PrepareVmArgs | undefined> {
  const a: PrepareVmArgs = { ...given };
  if (!a.environmentDir && !a.metrFamilyDir) {
    const kind = await vscode.window.showQuickPick(
      [
        { label: 'An environment folder', detail: 'A folder with manifest.json (e.g. environments/reservoir-scan)', metr: false },
        { label: 'A METR task family', detail: 'A folder with <family>.py defining TaskFamily (METR Task Standard)', metr: true },
      ],
      { title: 'RE-Bench: what to install on the VM', ignoreFocusOut: true },
    );
    if (!kind) return undefined;
    if (kind.metr) {
      const picked = await vscode.window.showOpenDialog({
        title: 'The METR task family folder (holds <family>.py)',
        canSelectFolders: true,
        canSelectFiles: false,
        canSelectMany: false,
        openLabel: 'Use This Family',
      });
      a.metrFamilyDir = picked?.[0]?.fsPath;
      if (!a.metrFamilyDir) return undefined;
    }
  }
  if (a.metrFamilyDir) {
    if (!a.task) {
      a.task = await ask('The task of the family to run (a name from its get_tasks())', 'main', (v) => (v ? undefined : 'a task name'));
      if (!a.task) return undefined;
    }
    const end = scoresAtTheEnd(a.metrFamilyDir);
    if (end && a.startingScore === undefined) {
      const start = await ask('The family scores one submitted answer at the end: the score a trivial answer gets (the starting score)', '0', (v) =>
        v !== '' && Number.isFinite(Number(v)) ? undefined : 'a number, e.g. 0',
      );
      if (start === undefined) return undefined;
      a.startingScore = Number(start);
    }
    if (end && a.answerPattern === undefined) {
      const pattern = await ask(
        'A regular expression every answer must match, checked before it is sent (leave empty for none)',
        '',
        (v) => {
          try {
            new RegExp(v, 'u');
            return undefined;
          } catch (e) {
            return `not a regular expression: ${(e as Error).message}`;
          }
        },
        'e.g. [0-9]+',
      );
      if (pattern === undefined) return undefined;
      a.answerPattern = pattern;
    }
    if (a.referenceScore === undefined) {
      const ref = await ask(`The reference solution's score${end ? '' : ' (the starting score is measured on the VM)'}`, '', (v) =>
        v !== '' && Number.isFinite(Number(v)) ? undefined : 'a number, e.g. -1.2',
      );
      if (ref === undefined) return undefined;
      a.referenceScore = Number(ref);
    }
    if (a.secretsFile === undefined) {
      const pick = await vscode.window.showQuickPick(
        [
          { label: 'No secrets file', detail: 'The family needs no environment variables', choose: false },
          { label: 'Choose a secrets file…', detail: 'NAME=VALUE lines, stored root-only on the VM', choose: true },
        ],
        { title: "RE-Bench: the family's required environment variables", ignoreFocusOut: true },
      );
      if (!pick) return undefined;
      if (pick.choose) {
        const file = await vscode.window.showOpenDialog({
          title: 'The secrets file (NAME=VALUE lines)',
          canSelectFiles: true,
          canSelectMany: false,
          openLabel: 'Use These Secrets',
        });
        if (!file?.[0]) return undefined;
        a.secretsFile = file[0].fsPath;
      } else a.secretsFile = null;
    }
    a.participant ??= 'agent';
  }
  if (!a.environmentDir && !a.metrFamilyDir) {
    const picked = await vscode.window.showOpenDialog({
      title: 'The environment to install (a folder with manifest.json; never a reference solution)',
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: false,
      defaultUri: vscode.Uri.file(path.join(extensionPath, 'environments')),
      openLabel: 'Install This Environment',
    });
    a.environmentDir = picked?.[0]?.fsPath;
    if (!a.environmentDir) return undefined;
  }
  if (!a.host) {
    const hp = await ask(
      "The VM's address, as the participant will reach it: HOST or HOST:PORT",
      '',
      (v) => (/^([A-Za-z0-9._%-]+|\[[0-9A-Fa-f:.%]+\])(:\d{1,5})?$/.test(v) ? undefined : 'HOST or HOST:PORT, e.g. 203.0.113.7 or vm7.example.org:2222'),
      '203.0.113.7',
    );
    if (!hp) return undefined;
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(hp) ?? /^([^:]+)(?::(\d+))?$/.exec(hp);
    a.host = m?.[1] ?? hp;
    if (m?.[2]) a.port = Number(m[2]);
  }
  if (!a.admin) {
    a.admin = await ask("The administrator's login on the VM: root, or a user with passwordless sudo", 'root', (v) =>
      /^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(v) ? undefined : 'a user name',
    );
    if (!a.admin) return undefined;
  }
  if (!a.identityFiles) {
    const keys = defaultKeys();
    const choices = [
      ...(keys.length
        ? [{ label: 'My default keys and SSH agent', detail: keys.join(', '), keys }]
        : [{ label: 'My SSH agent', detail: 'SSH_AUTH_SOCK', keys: [] as string[] }]),
      { label: 'Choose a private key file…', keys: undefined as string[] | undefined },
    ];
    const pick = await vscode.window.showQuickPick(choices, { title: `RE-Bench: how ${a.admin} logs in to the VM`, ignoreFocusOut: true });
    if (!pick) return undefined;
    if (pick.keys) a.identityFiles = pick.keys;
    else {
      const file = await vscode.window.showOpenDialog({
        title: "The administrator's private key",
        canSelectFiles: true,
        canSelectMany: false,
        defaultUri: vscode.Uri.file(path.join(os.homedir(), '.ssh')),
        openLabel: 'Use This Key',
      });
      if (!file?.[0]) return undefined;
      a.identityFiles = [file[0].fsPath];
    }
  }
  if (!a.participant) {
    a.participant = await ask("The participant's login user on the VM (it must exist)", 'agent', (v) =>
      USER.test(v) ? undefined : 'lowercase letters, digits, "_" and "-", starting with a letter or "_"',
    );
    if (!a.participant) return undefined;
  }
  if (!a.profilePath) {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? os.homedir();
    const suggested = `${a.participant}@${a.host.replace(/[^A-Za-z0-9._-]/g, '_')}${a.port && a.port !== 22 ? `_${a.port}` : ''}.rebench-profile.json`;
    const file = await vscode.window.showSaveDialog({
      title: "Where to write the participant's session profile",
      defaultUri: vscode.Uri.file(path.join(folder, suggested)),
      filters: { 'Session profile': ['json'] },
      saveLabel: 'Write Profile Here',
    });
    a.profilePath = file?.fsPath;
    if (!a.profilePath) return undefined;
  }
  return a;
}

export async function prepareVmCommand(
  given: PrepareVmArgs | undefined,
  load: () => PrepareModule,
  extensionPath: string,
  log: ExtensionLog,
): Promise<PrepareResult | undefined> {
  const a = await askAll(given ?? {}, extensionPath);
  if (!a?.host || !a.admin || !a.participant || !(a.environmentDir || a.metrFamilyDir) || !a.profilePath) return undefined;
  const organiser = load();
  const what = a.metrFamilyDir ? `the METR task family ${a.metrFamilyDir} (task ${a.task})` : a.environmentDir;
  log.info(`Preparing ${a.admin}@${a.host}:${a.port ?? 22} for ${a.participant} with ${what}; profile ${a.profilePath}.`);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `RE-Bench: preparing ${a.host}`, cancellable: true },
    async (progress, token) => {
      const abort = new AbortController();
      const cancel = token.onCancellationRequested(() => abort.abort());
      try {
        return await organiser.prepareVm({
          admin: {
            host: a.host as string,
            port: a.port,
            user: a.admin as string,
            identityFiles: a.identityFiles,
            hostKeyFingerprint: a.hostKeyFingerprint,
            knownHostsFiles: a.knownHostsFiles ?? [path.join(os.homedir(), '.ssh', 'known_hosts')],
            acceptNewHostKey: a.acceptNewHostKey === true,
          },
          participant: a.participant as string,
          environmentDir: a.environmentDir ?? '',
          metr: a.metrFamilyDir
            ? {
                familyDir: a.metrFamilyDir,
                task: a.task as string,
                referenceScore: a.referenceScore,
                ...(a.startingScore !== undefined ? { startingScore: a.startingScore } : {}),
                ...(a.answerPattern ? { answerPattern: a.answerPattern } : {}),
                ...(a.answerFormat ? { answerFormat: a.answerFormat } : {}),
                secretsFile: a.secretsFile ?? undefined,
                familyRoot: a.metrFamilyRoot,
              }
            : undefined,
          profilePath: a.profilePath as string,
          scoringUser: a.scoringUser,
          signal: abort.signal,
          onProgress: (p) => {
            if (p.step === 'scorer-output') {
              for (const line of p.message.replace(/\n$/, '').split('\n')) log.info(`  | ${line}`);
              return;
            }
            log.info(`[${p.step}] ${p.message}`);
            progress.report({ message: p.message.length > 120 ? `${p.message.slice(0, 117)}…` : p.message });
          },
          // Nothing vouches for this key: the organiser decides, with the way to check it in front of them.
          confirmNewHostKey: async (key) => {
            const trust = 'Trust and Pin It';
            const answer = await vscode.window.showWarningMessage(
              `The host key of ${key.host}:${key.port} is ${key.keyType} ${key.fingerprint}. It is not in your known_hosts file and no fingerprint was given.`,
              {
                modal: true,
                detail:
                  'Compare it with what "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" prints on the VM\'s console. If you trust it, it is pinned in the participant\'s profile.',
              },
              trust,
            );
            return answer === trust;
          },
        });
      } finally {
        cancel.dispose();
      }
    },
  );
  for (const line of result.changed) log.info(`changed: ${line}`);
  for (const line of result.unchanged) log.info(`in place: ${line}`);
  for (const line of result.warnings) log.warn(line);
  const s = result.startingScore;
  const score = s ? ` Starting score on this VM: ${s.measured} (manifest ${s.manifest}).` : '';
  const text = result.changed.length
    ? `RE-Bench: prepared ${a.host} (${result.changed.length} change${result.changed.length === 1 ? '' : 's'}).${score} Profile: ${result.profile.path}`
    : `RE-Bench: ${a.host} was already prepared; nothing changed.${score} Profile: ${result.profile.path}`;
  const actions = ['Open Profile', 'Show Log'];
  void (
    result.warnings.length
      ? vscode.window.showWarningMessage(`${text} ${result.warnings[0]}`, ...actions)
      : vscode.window.showInformationMessage(text, ...actions)
  ).then(async (answer) => {
    if (answer === 'Open Profile') await vscode.window.showTextDocument(vscode.Uri.file(result.profile.path), { preview: false });
    if (answer === 'Show Log') log.show();
  });
  return result;
}
