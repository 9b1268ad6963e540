// The "RE-Bench" commands. Each one reports failures as a message that says what to do next.
import * as vscode from 'vscode';
import { parseProfile, type SessionProfile } from '../core/profile';
import { Commands, StateKeys, Views } from './constants';
import type { ExtensionLog } from './extensionLog';
import { HistoryPanel } from './historyPanel';
import { showInstructions } from './instructionsPanel';
import type { SessionController } from './sessionController';
import type { SessionViewProvider } from './sessionViewProvider';
import { registerReportingCommand } from './registerCommand';
import { pickConnection, solutionFolderUri, type ConnectionChoice, type EnvironmentCatalog } from './targets';

const REMOTE_SSH_EXTENSION = 'ms-vscode-remote.remote-ssh';

export function registerCommands(
  context: vscode.ExtensionContext,
  controller: SessionController,
  log: ExtensionLog,
  view: SessionViewProvider,
  environments: EnvironmentCatalog,
): void {
  const register = (id: string, run: (...args: any[]) => Promise<unknown> | unknown, retryable = false) =>
    registerReportingCommand(context, log, id, run, (message, args) =>
      void controller.showError(message, retryable ? () => Promise.resolve(run(...args)) : undefined),
    );

  register(
    Commands.connect,
    async (choice?: ConnectionChoice) => {
      const picked = choice ?? (await pickConnection(context, environments, log));
      if (!picked) return false;
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `RE-Bench: connecting…`, cancellable: false },
        () => controller.connect(picked),
      );
      void revealSessionView();
      return true;
    },
    true,
  );

  register(
    Commands.tryDemo,
    async () => {
      await controller.connect({ kind: 'local', environmentId: environments.defaultEnvironmentId() });
      void revealSessionView();
      return true;
    },
    true,
  );

  register(Commands.importProfile, async (file?: vscode.Uri) => {
    const uri =
      file ??
      (
        await vscode.window.showOpenDialog({
          title: 'Import a session profile from your organiser',
          canSelectMany: false,
          filters: { 'Session profile': ['json'] },
        })
      )?.[0];
    if (!uri) return undefined;
    const bytes = await vscode.workspace.fs.readFile(uri);
    const parsed = parseProfile(Buffer.from(bytes).toString('utf8'), uri.path.split('/').pop() ?? 'the profile');
    if (!parsed.ok) throw new Error(parsed.error);
    const profiles = context.globalState.get<SessionProfile[]>(StateKeys.profiles, []).filter((p) => p.name !== parsed.value.name);
    await context.globalState.update(StateKeys.profiles, [...profiles, parsed.value]);
    log.info(`Imported session profile "${parsed.value.name}" (${parsed.value.user}@${parsed.value.host}:${parsed.value.port}, host key ${parsed.value.host_key_fingerprint}).`);
    const connect = 'Connect Now';
    if (!file) {
      const answer = await vscode.window.showInformationMessage(`Imported the session profile "${parsed.value.name}".`, connect);
      if (answer === connect) await vscode.commands.executeCommand(Commands.connect, profileChoice(parsed.value));
    }
    return parsed.value;
  });

  register(Commands.startSession, (options?: { confirmed?: boolean }) => controller.startSession(options), true);

  register(Commands.showInstructions, async () => {
    const { title, markdown } = await controller.showInstructions();
    showInstructions(context.extensionUri, { title, markdown, environmentId: title });
    return { title, markdown };
  });

  register(Commands.scoreNow, () => controller.scoreNow(), true);

  register(Commands.showHistory, () => {
    HistoryPanel.createOrShow(context.extensionUri, { onAction: (a) => controller.runViewAction(a), log });
    HistoryPanel.current?.setSnapshot(controller.snapshot());
  });

  register(Commands.pause, () => controller.pause(), true);
  register(Commands.resume, () => controller.resume(), true);
  register(Commands.endSession, (options?: { confirmed?: boolean }) => controller.endSession(options));

  register(Commands.exportLog, async (format?: 'json' | 'metr-csv', destination?: vscode.Uri) => {
    const chosen =
      format ??
      (
        await vscode.window.showQuickPick(
          [
            { label: 'JSON', description: 'every field of every entry, with the hash chain', format: 'json' as const },
            { label: 'METR CSV', description: 'timestamp,score,message,details — as METR\'s protected scoring writes it', format: 'metr-csv' as const },
          ],
          { title: 'Export the score log as' },
        )
      )?.format;
    if (!chosen) return undefined;
    const uri = await controller.exportLog(chosen, destination);
    if (uri && !destination) void vscode.window.showInformationMessage(`Score log exported to ${uri.fsPath}.`);
    return uri;
  });

  register(Commands.verifyLog, async () => {
    const result = await controller.verifyLog();
    if (result.intact) void vscode.window.showInformationMessage(result.message);
    else void vscode.window.showErrorMessage(result.message);
    return result;
  });

  register(Commands.openSolution, async () => {
    const where = controller.solutionLocation();
    if (!where) throw new Error('Not connected. Connect to your VM first.');
    const uri = solutionFolderUri(where.choice, where.dir);
    if (uri.scheme === 'file') return vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
    if (!vscode.extensions.getExtension(REMOTE_SSH_EXTENSION)) {
      const copy = 'Copy Path';
      const answer = await vscode.window.showInformationMessage(
        `Your solution folder is ${where.dir} on the VM.`,
        {
          modal: true,
          detail:
            'To edit it in VS Code, install the "Remote - SSH" extension and run this command again: it opens the folder in a Remote-SSH window. Without it, connect with a terminal (ssh) and edit the files there.',
        },
        copy,
      );
      if (answer === copy) await vscode.env.clipboard.writeText(where.dir);
      return undefined;
    }
    return vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
  });

  register(Commands.showLog, () => log.show());
  register(Commands.disconnect, () => controller.disconnect(true));
  register(Commands.focusView, () => revealSessionView());
  void view;
}

/** Shows the session view, where the participant follows everything after connecting. */
function revealSessionView(): Thenable<unknown> {
  return vscode.commands.executeCommand(`${Views.session}.focus`);
}

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
  };
}
