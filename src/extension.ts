// Wiring only: build the services, register the commands and views, push the disposables.
import * as vscode from 'vscode';
import { ParticipantActions } from './ui/actions';
import { StateKeys, Views } from './ui/constants';
import { EndQuestionsPanel } from './ui/endQuestionsPanel';
import { ExtensionLog } from './ui/extensionLog';
import { HistoryPanel } from './ui/historyPanel';
import { INSTRUCTIONS_VIEW_TYPE, isInstructionsContent, reviveInstructions } from './ui/instructionsPanel';
import { AwayWatcher, SNAPSHOT_SCHEME, SnapshotDocuments } from './ui/participantFlows';
import { registerOrganiserCommands } from './ui/organiserCommands';
import { SessionController } from './ui/sessionController';
import { SessionViewProvider } from './ui/sessionViewProvider';
import { EnvironmentCatalog } from './ui/targets';

export interface ExtensionApi {
  /** For the extension's own tests: the controller behind the commands. */
  readonly controller: SessionController;
  /** For the extension's own tests: the participant's actions, as the commands and views run them. */
  readonly actions: ParticipantActions;
  /** For the extension's own tests: the end questions form open now, if any. */
  endQuestionsForm(): EndQuestionsPanel | undefined;
  /** For the extension's own tests: where VS Code keeps this extension's logs (Show Log's file among them). */
  readonly logUri: vscode.Uri;
}

export function activate(context: vscode.ExtensionContext): ExtensionApi {
  const log = new ExtensionLog();
  context.subscriptions.push(log);
  log.info(`RE-Bench Session ${context.extension.packageJSON.version} activated (${vscode.env.remoteName ?? 'local'} extension host).`);

  const environments = new EnvironmentCatalog(context.extensionUri.fsPath);
  const controller = new SessionController(context, log, environments);
  context.subscriptions.push(controller);

  const actions = new ParticipantActions({ context, controller, log, environments });
  const view = new SessionViewProvider(context.extensionUri, actions.viewHandlers());
  context.subscriptions.push(vscode.window.registerWebviewViewProvider(Views.session, view));
  controller.addView(view);
  controller.addView({
    setSnapshot: (s) => HistoryPanel.current?.setSnapshot(s),
    appendJobOutput: (jobId, text) => HistoryPanel.current?.appendJobOutput(jobId, text),
  });

  // After a reload, an open score history panel comes back with the session's data.
  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(HistoryPanel.viewType, {
      deserializeWebviewPanel: async (panel) => {
        HistoryPanel.revive(panel, context.extensionUri, actions.viewHandlers(), controller.snapshot());
      },
    }),
  );

  // After a reload, the instructions tab comes back with the instructions last shown.
  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(INSTRUCTIONS_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => {
        const content = context.workspaceState.get<unknown>(StateKeys.instructions);
        if (isInstructionsContent(content)) reviveInstructions(panel, context.extensionUri, content);
        else panel.dispose();
      },
    }),
  );

  // Kept solutions open in diff editors through their own read-only documents.
  context.subscriptions.push(vscode.workspace.registerTextDocumentContentProvider(SNAPSHOT_SCHEME, new SnapshotDocuments(() => controller.current)));
  // Where pauses are allowed, an absence is met with an offer to pause (never a pause without a click).
  context.subscriptions.push(
    new AwayWatcher(
      () => controller.current,
      () => controller.studySettings(),
      () => actions.invoke('pause', 'internal'),
    ),
  );

  actions.registerCommands();
  registerOrganiserCommands(context, log);
  void controller.restore();
  return { controller, actions, endQuestionsForm: () => EndQuestionsPanel.current, logUri: context.logUri };
}

export function deactivate(): void {}
