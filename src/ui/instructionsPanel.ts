// The environment's instructions in an editor panel: Markdown and math rendered on the host to safe HTML,
// shown with no script at all (script-src 'none') and with the find widget for long task descriptions.
import { createHash } from 'node:crypto';
import * as vscode from 'vscode';
import { loadMarkdown } from './lazyModules';
import { renderWebviewHtml } from './webviewHtml';

export const INSTRUCTIONS_VIEW_TYPE = 'rebench.instructions';

export interface InstructionsContent {
  title: string;
  markdown: string;
  environmentId: string;
}

let current: { panel: vscode.WebviewPanel; key: string } | undefined;

function contentKey(content: InstructionsContent): string {
  return createHash('sha256').update(content.environmentId).update('\0').update(content.title).update('\0').update(content.markdown).digest('hex');
}

/** Shows the instructions, reusing the open panel (and updating it when the content changed). */
export function showInstructions(extensionUri: vscode.Uri, content: InstructionsContent): vscode.WebviewPanel {
  const key = contentKey(content);
  if (current) {
    if (current.key !== key) {
      current.key = key;
      current.panel.title = `Instructions: ${content.title}`;
      current.panel.webview.html = pageHtml(current.panel.webview, extensionUri, content);
    }
    current.panel.reveal();
    return current.panel;
  }
  const panel = vscode.window.createWebviewPanel(
    INSTRUCTIONS_VIEW_TYPE,
    `Instructions: ${content.title}`,
    vscode.ViewColumn.Active,
    panelOptions(extensionUri),
  );
  adopt(panel, extensionUri, content);
  return panel;
}

/**
 * For a WebviewPanelSerializer: the instructions tab that was open before a window reload comes back with
 * the instructions last shown (kept by the extension; they are the VM's, read when the session started).
 */
export function reviveInstructions(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, content: InstructionsContent): void {
  if (current && current.panel !== panel) current.panel.dispose();
  panel.webview.options = panelOptions(extensionUri);
  panel.title = `Instructions: ${content.title}`;
  adopt(panel, extensionUri, content);
}

/** What a stored InstructionsContent must look like to be shown again. */
export function isInstructionsContent(value: unknown): value is InstructionsContent {
  const v = value as Partial<InstructionsContent> | undefined;
  return !!v && typeof v.title === 'string' && typeof v.markdown === 'string' && typeof v.environmentId === 'string';
}

function panelOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: false,
    enableCommandUris: false,
    enableFindWidget: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

function adopt(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, content: InstructionsContent): void {
  panel.webview.html = pageHtml(panel.webview, extensionUri, content);
  const entry = { panel, key: contentKey(content) };
  current = entry;
  const subscription = panel.onDidDispose(() => {
    if (current === entry) current = undefined;
    subscription.dispose();
  });
}

function pageHtml(webview: vscode.Webview, extensionUri: vscode.Uri, content: InstructionsContent): string {
  return renderWebviewHtml({
    webview,
    extensionUri,
    title: `Instructions: ${content.title}`,
    stylePath: 'media/instructions.css',
    bodyHtml: `<main class="instructions">\n${loadMarkdown().renderMarkdown(content.markdown)}</main>`,
  });
}
