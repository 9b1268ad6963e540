// The participant's actions, one function each. A command from the palette, a button in the session view
// or the score history panel, and the status bar item all run the same entry of this table; our own code
// calls the table directly, never through the command registry. A failure is shown once, where the action
// was asked for: as a notification for a command, next to the button for a view.
import * as vscode from 'vscode';
import { parseProfile, type SessionProfile } from '../core/profile';
import type { ScoreLogEntry } from '../core/runnerProtocol';
import type { ViewAction } from '../core/webviewProtocol';
import { Commands, StateKeys, Views } from './constants';
import type { ExtensionLog } from './extensionLog';
import { HistoryPanel } from './historyPanel';
import { showInstructions } from './instructionsPanel';
import { reporting } from './registerCommand';
import type { SessionController } from './sessionController';
import { addNote, answerEndQuestions, giveUp, openDemoFolder, restoreSolution, runLabel, showChanges } from './participantFlows';
import {
  pickConnection,
  pickProfileToRemove,
  profileChoice,
  removeProfile,
  solutionFolderUri,
  type ConnectionChoice,
  type EnvironmentCatalog,
} from './targets';

const REMOTE_SSH_EXTENSION = 'ms-vscode-remote.remote-ssh';

export interface ActionSpec {
  /** The command that runs it from the palette, a menu or the status bar. */
  readonly command: string;
  /** Whether a failure offers Retry (the same call again). */
  readonly retryable: boolean;
  readonly run: (...args: any[]) => Promise<unknown>;
}

/** Every view action is an action of the table, under the same name. */
export type ActionId = ViewAction | 'tryDemo' | 'importProfile' | 'removeProfile' | 'verifyLog' | 'showSessionView' | 'answerEndQuestions';

/** Where an action was asked for, which decides where its failure is shown. */
export type ActionOrigin = 'command' | 'view' | 'internal';

export interface ActionDeps {
  context: vscode.ExtensionContext;
  controller: SessionController;
  log: ExtensionLog;
  environments: EnvironmentCatalog;
}

export class ParticipantActions {
  readonly table: { readonly [K in ActionId]: ActionSpec };

  constructor(private readonly deps: ActionDeps) {
    const { context, controller, log, environments } = deps;
    const spec = (command: string, run: (...args: any[]) => Promise<unknown> | unknown, retryable = false): ActionSpec => ({
      command,
      retryable,
      run: async (...args: any[]) => run(...args),
    });

    this.table = {
      connect: spec(
        Commands.connect,
        async (choice?: ConnectionChoice, options?: { confirmed?: boolean }) => {
          const picked =
            choice ?? (await pickConnection(context, environments, log, () => this.invoke('importProfile', 'command') as Promise<SessionProfile | undefined>));
          if (!picked) return false;
          // A session running elsewhere is not left without asking.
          if (!options?.confirmed && !(await controller.confirmSwitch(picked))) return false;
          await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `RE-Bench: connecting…`, cancellable: false }, () =>
            controller.connect(picked),
          );
          void revealSessionView();
          return true;
        },
        true,
      ),

      tryDemo: spec(
        Commands.tryDemo,
        async (options?: { confirmed?: boolean }) => {
          const demo: ConnectionChoice = { kind: 'local', environmentId: environments.defaultEnvironmentId() };
          if (!options?.confirmed && !(await controller.confirmSwitch(demo))) return false;
          await controller.connect(demo);
          void revealSessionView();
          // The demo's starting score is this machine's, so an untouched solution scores about 0 here.
          await controller.measureDemoStart();
          const dir = controller.solutionLocation()?.dir;
          if (dir) await openDemoFolder(context, dir);
          return true;
        },
        true,
      ),

      importProfile: spec(Commands.importProfile, async (file?: vscode.Uri) => {
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
        log.info(
          `Imported session profile "${parsed.value.name}" (${parsed.value.user}@${parsed.value.host}:${parsed.value.port}, host key ${parsed.value.host_key_fingerprint}).`,
        );
        const connect = 'Connect Now';
        if (!file) {
          const answer = await vscode.window.showInformationMessage(`RE-Bench: imported the session profile "${parsed.value.name}".`, connect);
          // Connecting is an action of its own, asked for by this button: it reports its own failure.
          if (answer === connect) await this.invoke('connect', 'command', profileChoice(parsed.value)).catch(() => undefined);
        }
        return parsed.value;
      }),

      removeProfile: spec(Commands.removeProfile, (name?: string, options?: { confirmed?: boolean }) =>
        name === undefined ? pickProfileToRemove(context, log) : removeProfile(context, log, name, options),
      ),

      start: spec(
        Commands.startSession,
        async (options?: { confirmed?: boolean }) => {
          const started = await controller.startSession(options);
          // Reading time counts, so the instructions open as soon as the clock runs.
          if (started) void this.invoke('showInstructions', 'internal').catch(() => undefined);
          return started;
        },
        true,
      ),

      showInstructions: spec(Commands.showInstructions, async () => {
        const { title, markdown } = await controller.showInstructions();
        const content = { title, markdown, environmentId: title };
        showInstructions(context.extensionUri, content);
        await context.workspaceState.update(StateKeys.instructions, content);
        return { title, markdown };
      }),

      score: spec(Commands.scoreNow, () => controller.scoreNow(), true),

      submitAnswer: spec(Commands.submitAnswer, async (given?: { answer: string; confirmed?: boolean }) => {
        const entry = await controller.submitAnswer(given);
        // The organiser's questions come once the session is over, as after End Session.
        if (entry && !given?.confirmed)
          void answerEndQuestions(controller.requireOpen(), log, controller.studySettings(), context.extensionUri).catch((e: unknown) =>
            log.warn(`End questions: ${String(e)}`),
          );
        return entry;
      }),

      showHistory: spec(Commands.showHistory, () => {
        HistoryPanel.createOrShow(context.extensionUri, this.viewHandlers(), controller.snapshot());
      }),

      pause: spec(Commands.pause, () => controller.pause(), true),
      resume: spec(Commands.resume, () => controller.resume(), true),
      end: spec(Commands.endSession, async (options?: { confirmed?: boolean }) => {
        const ended = await controller.endSession(options);
        // The organiser's questions come once the session is over; skippable, never blocking.
        if (ended && !options?.confirmed)
          void answerEndQuestions(controller.requireOpen(), log, controller.studySettings(), context.extensionUri).catch((e: unknown) =>
            log.warn(`End questions: ${String(e)}`),
          );
        return ended;
      }),

      exportLog: spec(Commands.exportLog, async (format?: 'json' | 'metr-csv', destination?: vscode.Uri) => {
        const chosen =
          format ??
          (
            await vscode.window.showQuickPick(
              [
                { label: 'JSON', description: 'every field of every entry, with the hash chain', format: 'json' as const },
                { label: 'METR CSV', description: "timestamp,score,message,details — as METR's protected scoring writes it", format: 'metr-csv' as const },
              ],
              { title: 'Export the score log as' },
            )
          )?.format;
        if (!chosen) return undefined;
        const uri = await controller.exportLog(chosen, destination);
        if (uri && !destination) void vscode.window.showInformationMessage(`RE-Bench: score log exported to ${uri.fsPath}.`);
        return uri;
      }),

      verifyLog: spec(Commands.verifyLog, async () => {
        const result = await controller.verifyLog();
        if (result.intact) void vscode.window.showInformationMessage(`RE-Bench: ${result.message}`);
        else void vscode.window.showErrorMessage(`RE-Bench: ${result.message}`);
        return result;
      }),

      openSolution: spec(Commands.openSolution, async () => {
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
      }),

      addNote: spec(Commands.addNote, (text?: string) => addNote(controller.requireOpen(), log, text), true),

      giveUp: spec(Commands.giveUp, async (preset?: { reason: string; choice: string | null }) => {
        const ended = await giveUp(controller.requireOpen(), log, controller.studySettings(), preset);
        // The form opens in the editor; nothing waits on it.
        if (ended && !preset) await answerEndQuestions(controller.requireOpen(), log, controller.studySettings(), context.extensionUri);
        return ended;
      }),

      answerEndQuestions: spec(Commands.answerEndQuestions, async (given?: Parameters<typeof answerEndQuestions>[4]) => {
        const session = controller.requireOpen();
        if (session.status?.state !== 'ended') throw new Error('The end questions are answered after the session has ended.');
        const done = await answerEndQuestions(session, log, controller.studySettings(), context.extensionUri, given);
        if (done === undefined && !given) void vscode.window.showInformationMessage('RE-Bench: there are no end questions to answer, or they are answered.');
        return done;
      }),

      showChanges: spec(Commands.showChanges, async (index?: number, against?: 'current' | 'previous') => {
        const session = controller.requireOpen();
        const chosen = index ?? (await pickRun(session.entries, 'Show changes since which run?'));
        return chosen === undefined ? undefined : showChanges(session, chosen, against);
      }),

      restoreSolution: spec(Commands.restoreSolution, async (index?: number, options?: { confirmed?: boolean }) => {
        const session = controller.requireOpen();
        const chosen = index ?? (await pickRun(session.entries, 'Restore the solution of which run?'));
        return chosen === undefined ? false : restoreSolution(session, log, chosen, options);
      }),

      showLog: spec(Commands.showLog, () => log.show()),
      disconnect: spec(Commands.disconnect, () => controller.disconnect(true)),
      showSessionView: spec(Commands.focusView, () => revealSessionView()),
    };
  }

  /** Runs an action; a failure is logged, shown where `origin` says, and re-thrown. */
  invoke(id: ActionId, origin: ActionOrigin, ...args: unknown[]): Promise<unknown> {
    const action = this.table[id];
    const show =
      origin === 'command'
        ? (message: string, given: unknown[]) => void this.deps.controller.showError(message, action.retryable ? () => action.run(...given) : undefined)
        : undefined;
    return reporting(this.deps.log, action.command, action.run, show)(...args);
  }

  /**
   * Registers each action's command. Run by the participant (the palette, a key, a menu: no arguments), a
   * failure has been shown by then, and the command settles: a rejection would make VS Code report it again,
   * in a "Command … resulted in an error" dialog. A caller that passes arguments gets the rejection.
   */
  registerCommands(): void {
    for (const id of Object.keys(this.table) as ActionId[]) {
      this.deps.context.subscriptions.push(
        vscode.commands.registerCommand(this.table[id].command, (...args: unknown[]) => {
          const running = this.invoke(id, 'command', ...args);
          return args.length === 0 ? running.catch(() => undefined) : running;
        }),
      );
    }
  }

  /** What the session view and the history panel call: the reply carries a failure back to the button. */
  viewHandlers(): { onAction(action: ViewAction, index?: number): Promise<void>; log: ExtensionLog } {
    return {
      onAction: async (action, index) => {
        await (index === undefined ? this.invoke(action, 'view') : this.invoke(action, 'view', index));
      },
      log: this.deps.log,
    };
  }
}

/** Asks which run (newest first, with a kept solution) an action is about. */
async function pickRun(entries: readonly ScoreLogEntry[], title: string): Promise<number | undefined> {
  const kept = [...entries].reverse().filter((e) => e.snapshot && 'id' in e.snapshot);
  if (kept.length === 0) throw new Error('No scored run has a kept solution yet: score first.');
  return (
    await vscode.window.showQuickPick(
      kept.map((e) => ({ label: runLabel(e), index: e.index })),
      { title: `RE-Bench: ${title}` },
    )
  )?.index;
}

/** Shows the session view, where the participant follows everything after connecting (VS Code's own command). */
function revealSessionView(): Thenable<unknown> {
  return vscode.commands.executeCommand(`${Views.session}.focus`);
}
