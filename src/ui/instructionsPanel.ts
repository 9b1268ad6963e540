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

/** Shows the instructions, reusing the open panel (and updating it when the content changed). */
export function showInstructions(extensionUri: vscode.Uri, content: InstructionsContent): vscode.WebviewPanel {
  const key = createHash('sha256').update(content.environmentId).update('\0').update(content.title).update('\0').update(content.markdown).digest('hex');
  const title = `Instructions: ${content.title}`;
  if (current) {
    if (current.key !== key) {
      current.key = key;
      current.panel.title = title;
      current.panel.webview.html = pageHtml(current.panel.webview, extensionUri, content);
    }
    current.panel.reveal();
    return current.panel;
  }
  const panel = vscode.window.createWebviewPanel(INSTRUCTIONS_VIEW_TYPE, title, vscode.ViewColumn.Active, {
    enableScripts: false,
    enableCommandUris: false,
    enableFindWidget: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'media')],
  });
  panel.webview.html = pageHtml(panel.webview, extensionUri, content);
  const entry = { panel, key };
  current = entry;
  const subscription = panel.onDidDispose(() => {
    if (current === entry) current = undefined;
    subscription.dispose();
  });
  return panel;
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
