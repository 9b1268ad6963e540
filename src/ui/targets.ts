// Choosing where the session runs (a VM over SSH, or this machine) and opening that target.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { StudySettings } from './participantFlows';
import { parseManifest } from '../core/manifest';
import { LocalTarget } from '../core/localTarget';
import type { SessionProfile } from '../core/profile';
import type { SshHop } from '../core/ssh/connection';
import { loadSshConfig } from '../core/ssh/sshConfigFiles';
import { profileKeys } from '../core/ssh/profileKeys';
import { configFileLabel, listHostSources, resolveHost } from '../core/ssh/sshConfig';
import type { Target } from '../core/target';
import { Settings, StateKeys } from './constants';
import type { ExtensionLog } from './extensionLog';
import { loadSsh } from './lazyModules';
import { setting } from './settings';

export const DEMO_ENVIRONMENT = 'demo-fast-function';

export type ConnectionChoice =
  | { kind: 'local'; environmentId: string }
  | {
      kind: 'ssh';
      /** Shown to the participant: a profile's name or the ssh config alias. */
      name: string;
      /** An ssh config alias to resolve at connect time, or a host name with the fields below. */
      alias?: string;
      host: string;
      port: number;
      user: string;
      fingerprint?: string;
      identityFile?: string;
      jump?: { host: string; port: number; user: string; fingerprint?: string };
      environmentId: string;
      protectedMode: boolean;
      runnerCommand?: string;
      /** The organiser's rules, end questions, give-up reasons and away time from the profile. */
      study?: StudySettings;
    };

export function describeChoice(choice: ConnectionChoice): string {
  return choice.kind === 'local' ? 'this machine' : `${choice.user}@${choice.host}${choice.port === 22 ? '' : `:${choice.port}`}`;
}

/** The environments this extension can set up: the bundled ones plus an organiser's folder from the settings. */
export class EnvironmentCatalog {
  constructor(private readonly extensionPath: string) {}

  runnerPath(): string {
    return path.join(this.extensionPath, 'environments', 'runner.pyz');
  }

  private roots(): string[] {
    const extra = setting<string>(Settings.environmentsFolder, '').trim();
    return [path.join(this.extensionPath, 'environments'), ...(extra ? [expandHome(extra)] : [])];
  }

  /** Environments with a manifest that parses, by id; an organiser's folder wins over the bundled copy. */
  list(): { id: string; title: string; dir: string }[] {
    const found = new Map<string, { id: string; title: string; dir: string }>();
    for (const root of this.roots()) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(root);
      } catch {
        continue;
      }
      for (const name of names) {
        const manifestPath = path.join(root, name, 'manifest.json');
        if (!fs.existsSync(manifestPath)) continue;
        const parsed = parseManifest(fs.readFileSync(manifestPath, 'utf8'), manifestPath);
        if (parsed.ok) found.set(parsed.value.id, { id: parsed.value.id, title: parsed.value.title, dir: path.join(root, name) });
      }
    }
    return [...found.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  defaultEnvironmentId(): string {
    return DEMO_ENVIRONMENT;
  }

  /** The local folder of an environment, checked so a broken manifest is reported before anything is uploaded. */
  folder(id: string): string {
    const env = this.list().find((e) => e.id === id);
    if (env) return env.dir;
    for (const root of this.roots()) {
      const manifestPath = path.join(root, id, 'manifest.json');
      if (fs.existsSync(manifestPath)) {
        const parsed = parseManifest(fs.readFileSync(manifestPath, 'utf8'), manifestPath);
        if (!parsed.ok) throw new Error(parsed.error);
      }
    }
    throw new Error(
      `This extension has no environment "${id}". Known: ${
        this.list()
          .map((e) => e.id)
          .join(', ') || 'none'
      }. ` + 'Check the environment id in your session profile, or set "rebench.environmentsFolder" to the folder that holds it.',
    );
  }
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

export interface OpenedTarget {
  target: Target;
  environmentSource: string;
  /** How the host key was checked, for the pre-flight list. */
  hostKeyNote: string;
}

export async function openTarget(
  choice: ConnectionChoice,
  context: vscode.ExtensionContext,
  log: ExtensionLog,
  environments: EnvironmentCatalog,
): Promise<OpenedTarget> {
  if (choice.kind === 'local') {
    return {
      target: new LocalTarget(),
      environmentSource: environments.folder(choice.environmentId),
      hostKeyNote: 'No SSH: the session runs on this machine.',
    };
  }
  // In protected mode the VM holds the environment; there is nothing to upload.
  const environmentSource = choice.protectedMode ? '' : environments.folder(choice.environmentId);
  const configFile = setting<string>(Settings.sshConfigFile, '').trim();
  const home = os.homedir();
  let hostName = choice.host;
  let port = choice.port;
  let user = choice.user;
  // A profile's keys: its identity_file, else an IdentityFile for its host in the OpenSSH config, else the
  // default key files (all looked for, so that "no key was found" can say where it looked).
  const configName = configFile || '~/.ssh/config';
  let profileConfig: ReturnType<typeof loadSshConfig> | undefined;
  try {
    profileConfig = choice.alias ? undefined : loadSshConfig(configFile ? expandHome(configFile) : undefined, home);
  } catch (e) {
    log.warn(`Could not read ${configName}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const keys = profileKeys({ host: choice.host, identity_file: choice.identityFile }, profileConfig, {
    home,
    localUser: os.userInfo().username,
    configName,
    join: path.join,
  });
  let identityFiles = keys.files;
  let keySource = keys.source;
  log.info(`Keys to offer to ${choice.host}: ${keys.files.join(', ')} (${keys.source}).`);
  let knownHostsFiles = [path.join(home, '.ssh', 'known_hosts')];
  let jump: SshHop[] = choice.jump
    ? [{ host: choice.jump.host, port: choice.jump.port, user: choice.jump.user, pinnedFingerprint: choice.jump.fingerprint, identityFiles }]
    : [];
  if (choice.alias) {
    const config = loadSshConfig(configFile ? expandHome(configFile) : undefined, home);
    const resolved = resolveHost(config, choice.alias, { home, localUser: os.userInfo().username });
    for (const w of resolved.warnings) log.warn(`ssh config: ${w}`);
    hostName = resolved.hostName;
    port = resolved.port;
    user = resolved.user;
    identityFiles = resolved.identityFiles;
    keySource = resolved.identityFilesExplicit ? `IdentityFile for ${choice.alias} in ${configName}` : 'the default key files';
    knownHostsFiles = resolved.userKnownHostsFiles;
    jump = resolved.jumpHosts.map((hop) => ({ host: hop.alias, hostName: hop.hostName, port: hop.port, user: hop.user, identityFiles: hop.identityFiles }));
  }
  const acceptedHostsFile = vscode.Uri.joinPath(context.globalStorageUri, 'known_hosts').fsPath;
  fs.mkdirSync(path.dirname(acceptedHostsFile), { recursive: true });
  const { SshTarget } = loadSsh();
  const target = new SshTarget({
    host: hostName,
    port,
    user,
    identityFiles,
    keySource,
    agent: process.platform === 'win32' ? 'pageant' : process.env.SSH_AUTH_SOCK,
    jump,
    pinnedFingerprint: choice.fingerprint,
    knownHostsFiles: [...knownHostsFiles, acceptedHostsFile],
    acceptedHostsFile,
    keepaliveIntervalMs: setting(Settings.keepaliveIntervalSeconds, 15) * 1000,
    keepaliveCountMax: setting(Settings.keepaliveCountMax, 3),
    readyTimeoutMs: setting(Settings.connectTimeoutSeconds, 20) * 1000,
    reconnect: {
      initialDelayMs: 1000,
      maxDelayMs: setting(Settings.reconnectMaxDelaySeconds, 30) * 1000,
      maxAttempts: setting(Settings.reconnectMaxAttempts, 0),
    },
    logger: log,
    askPassphrase: async (keyPath, attempt) =>
      vscode.window.showInputBox({
        title: 'RE-Bench: SSH key passphrase',
        prompt: attempt > 1 ? `Wrong passphrase. Try again: passphrase for ${keyPath}` : `Passphrase for ${keyPath}`,
        password: true,
        ignoreFocusOut: true,
      }),
    keyboardInteractive: async (name, instructions, prompts) => {
      const answers: string[] = [];
      for (const p of prompts) {
        const answer = await vscode.window.showInputBox({
          title: `RE-Bench: ${name || 'SSH login'}`,
          prompt: `${instructions ? `${instructions} ` : ''}${p.prompt}`,
          password: !p.echo,
          ignoreFocusOut: true,
        });
        if (answer === undefined) return undefined;
        answers.push(answer);
      }
      return answers;
    },
    confirmUnknownHost: async ({ host, port: p, keyType, fingerprint, knownKeyTypes }) => {
      const trust = 'Trust and Connect';
      const answer = await vscode.window.showWarningMessage(
        `The host ${host}${p === 22 ? '' : `:${p}`} is not known yet.`,
        {
          modal: true,
          detail:
            `Its ${keyType} key has the fingerprint\n${fingerprint}\n\nCompare it with the one your organiser gave you. Connect only if they match.` +
            (knownKeyTypes.length ? `\n\nNote: known_hosts already holds a ${knownKeyTypes.join(', ')} key for this host.` : ''),
        },
        trust,
      );
      return answer === trust;
    },
  });
  await target.connect();
  const note = choice.fingerprint ? `Host key matches the pinned fingerprint ${choice.fingerprint}.` : 'Host key checked against known_hosts.';
  log.info(`Connected to ${target.label}. ${note}`);
  return { target, environmentSource, hostKeyNote: note };
}

interface ChoiceItem extends vscode.QuickPickItem {
  choice?: ConnectionChoice;
  action?: 'import';
  /** The imported profile this item connects with: its button removes it. */
  profile?: string;
}

const REMOVE_PROFILE_BUTTON: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon('trash'), tooltip: 'Remove this session profile…' };

/** The session profiles imported so far. */
export function importedProfiles(context: vscode.ExtensionContext): SessionProfile[] {
  return context.globalState.get<SessionProfile[]>(StateKeys.profiles, []);
}

/**
 * Removes an imported session profile from the picker, after a confirmation that says what it does not
 * touch. True when it was removed.
 */
export async function removeProfile(
  context: vscode.ExtensionContext,
  log: ExtensionLog,
  name: string,
  options: { confirmed?: boolean } = {},
): Promise<boolean> {
  const profiles = importedProfiles(context);
  const profile = profiles.find((p) => p.name === name);
  if (!profile) throw new Error(`There is no imported session profile "${name}".`);
  if (!options.confirmed) {
    const remove = 'Remove';
    const answer = await vscode.window.showWarningMessage(
      `Remove the session profile "${profile.name}"?`,
      {
        modal: true,
        detail:
          `It is no longer offered when you connect (${profile.user}@${profile.host}:${profile.port}, environment ${profile.environment}). ` +
          'Nothing on the VM changes: a session there, its score log and your solution stay as they are. ' +
          'To connect to it again, import the profile file from your organiser again.',
      },
      remove,
    );
    if (answer !== remove) return false;
  }
  await context.globalState.update(
    StateKeys.profiles,
    profiles.filter((p) => p.name !== name),
  );
  log.info(`Removed the session profile "${name}" (${profile.user}@${profile.host}:${profile.port}).`);
  return true;
}

/** Asks which imported profile to remove, then removes it after the confirmation. */
export async function pickProfileToRemove(context: vscode.ExtensionContext, log: ExtensionLog): Promise<boolean> {
  const profiles = importedProfiles(context);
  if (profiles.length === 0) {
    void vscode.window.showInformationMessage('RE-Bench: there is no imported session profile to remove.');
    return false;
  }
  const picked = await vscode.window.showQuickPick(
    profiles.map((p) => ({ label: p.name, description: `${p.user}@${p.host}:${p.port}`, detail: `environment ${p.environment}` })),
    { title: 'RE-Bench: remove which session profile?' },
  );
  return picked ? removeProfile(context, log, picked.label) : false;
}

/** Shows the picker; an item's remove button answers with the profile to remove instead of a choice. */
function showChoices(items: ChoiceItem[]): Promise<{ picked?: ChoiceItem; remove?: string }> {
  return new Promise((resolve) => {
    const qp = vscode.window.createQuickPick<ChoiceItem>();
    qp.title = 'RE-Bench: connect to';
    qp.placeholder = 'Pick your VM, or this machine to try the demo';
    qp.items = items;
    let answer: { picked?: ChoiceItem; remove?: string } = {};
    qp.onDidAccept(() => {
      answer = { picked: qp.selectedItems[0] };
      qp.hide();
    });
    qp.onDidTriggerItemButton((e) => {
      answer = { remove: e.item.profile };
      qp.hide();
    });
    qp.onDidHide(() => {
      qp.dispose();
      resolve(answer);
    });
    qp.show();
  });
}

/** The host picker: imported profiles, hosts from the OpenSSH config, and this machine. */
export async function pickConnection(
  context: vscode.ExtensionContext,
  environments: EnvironmentCatalog,
  log: ExtensionLog,
  importProfile: () => Promise<SessionProfile | undefined>,
): Promise<ConnectionChoice | undefined> {
  for (;;) {
    const { picked, remove } = await showChoices(connectionItems(context, environments, log));
    if (remove !== undefined) {
      // Removed or not, the picker comes back: the participant was choosing where to connect.
      await removeProfile(context, log, remove);
      continue;
    }
    if (!picked) return undefined;
    return chosen(picked, environments, importProfile);
  }
}

function connectionItems(context: vscode.ExtensionContext, environments: EnvironmentCatalog, log: ExtensionLog): ChoiceItem[] {
  const items: ChoiceItem[] = [];
  const profiles = importedProfiles(context);
  if (profiles.length) items.push({ label: 'Session profiles', kind: vscode.QuickPickItemKind.Separator });
  for (const p of profiles) {
    items.push({
      label: `$(account) ${p.name}`,
      description: `${p.user}@${p.host}:${p.port}`,
      detail: `environment ${p.environment}`,
      choice: profileChoice(p),
      profile: p.name,
      buttons: [REMOVE_PROFILE_BUTTON],
    });
  }
  const configFile = setting<string>(Settings.sshConfigFile, '').trim();
  try {
    const config = loadSshConfig(configFile ? expandHome(configFile) : undefined, os.homedir());
    const hosts = listHostSources(config);
    if (hosts.length) items.push({ label: 'OpenSSH config', kind: vscode.QuickPickItemKind.Separator });
    for (const { alias, file } of hosts) {
      items.push({
        label: `$(remote) ${alias}`,
        // The file that defines the host: the configured one, or a file it includes.
        description: `from ${configFileLabel(file, os.homedir())}`,
        choice: { kind: 'ssh', name: alias, alias, host: alias, port: 22, user: os.userInfo().username, environmentId: '', protectedMode: false },
      });
    }
  } catch (e) {
    log.warn(`Could not read the OpenSSH config: ${e instanceof Error ? e.message : String(e)}`);
  }
  items.push({ label: 'Other', kind: vscode.QuickPickItemKind.Separator });
  items.push({
    label: '$(device-desktop) This machine',
    description: 'the demo environment, no VM needed',
    choice: { kind: 'local', environmentId: environments.defaultEnvironmentId() },
  });
  items.push({ label: '$(file-add) Import a session profile…', action: 'import' });
  return items;
}

async function chosen(
  picked: ChoiceItem,
  environments: EnvironmentCatalog,
  importProfile: () => Promise<SessionProfile | undefined>,
): Promise<ConnectionChoice | undefined> {
  if (picked.action === 'import') {
    const profile = await importProfile();
    return profile ? profileChoice(profile) : undefined;
  }
  const choice = picked.choice!;
  if (choice.kind === 'ssh' && !choice.environmentId) {
    const env = await pickEnvironment(environments, 'Which environment does this VM run?');
    if (!env) return undefined;
    return { ...choice, environmentId: env };
  }
  if (choice.kind === 'local' && environments.list().length > 1) {
    const env = await pickEnvironment(environments, 'Which environment do you want to try?');
    if (!env) return undefined;
    return { ...choice, environmentId: env };
  }
  return choice;
}

async function pickEnvironment(environments: EnvironmentCatalog, title: string): Promise<string | undefined> {
  const picked = await vscode.window.showQuickPick(
    environments.list().map((e) => ({ label: e.title, description: e.id, id: e.id })),
    { title },
  );
  return picked?.id;
}

/** The URI that opens the solution folder: a local folder, or a Remote-SSH window on the VM. */
export function solutionFolderUri(choice: ConnectionChoice, dir: string): vscode.Uri {
  if (choice.kind === 'local') return vscode.Uri.file(dir);
  const host = choice.alias ?? `${choice.user}@${choice.host}`;
  return vscode.Uri.parse(`vscode-remote://ssh-remote+${encodeURIComponent(host)}${dir}`);
}

/** The connection a session profile from the organiser describes. */
export function profileChoice(profile: SessionProfile): ConnectionChoice {
  return {
    kind: 'ssh',
    name: profile.name,
    host: profile.host,
    port: profile.port,
    user: profile.user,
    fingerprint: profile.host_key_fingerprint,
    identityFile: profile.identity_file,
    jump: profile.jump
      ? { host: profile.jump.host, port: profile.jump.port, user: profile.jump.user, fingerprint: profile.jump.host_key_fingerprint }
      : undefined,
    environmentId: profile.environment,
    protectedMode: profile.protected,
    runnerCommand: profile.runner_command,
    study: {
      rules: profile.rules,
      end_questions: profile.end_questions,
      give_up_reasons: profile.give_up_reasons,
      away_after_minutes: profile.away_after_minutes,
    },
  };
}
