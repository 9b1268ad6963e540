// The HTML shell of every webview in the extension: a strict Content Security Policy (no inline script or
// style, no remote anything), a script nonce from crypto, and resources only from media/ and dist/media/.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

export interface WebviewHtmlOptions {
  webview: vscode.Webview;
  extensionUri: vscode.Uri;
  title: string;
  /** Script under the extension folder, e.g. 'dist/media/sessionView.js'; none means script-src 'none'. */
  scriptPath?: string;
  /** Stylesheet under the extension folder, e.g. 'media/sessionView.css'. */
  stylePath: string;
  bodyAttributes?: Record<string, string>;
  /** Body HTML, already safe (the instructions panel's rendered Markdown); empty for script-built views. */
  bodyHtml?: string;
}

export function createNonce(): string {
  return randomBytes(16).toString('base64');
}

/** The only folders a webview may load from. */
export function webviewResourceRoots(extensionUri: vscode.Uri): vscode.Uri[] {
  return [vscode.Uri.joinPath(extensionUri, 'media'), vscode.Uri.joinPath(extensionUri, 'dist', 'media')];
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const ATTRIBUTE_NAME = /^[a-z][a-z0-9-]*$/;

export function contentSecurityPolicy(cspSource: string, nonce: string | null): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    nonce ? `script-src 'nonce-${nonce}'` : "script-src 'none'",
    `font-src ${cspSource}`,
  ].join('; ');
}

export function renderWebviewHtml(options: WebviewHtmlOptions): string {
  const { webview, extensionUri } = options;
  const nonce = options.scriptPath ? createNonce() : null;
  const asset = (path: string): string => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...path.split('/'))).toString();
  const attributes = Object.entries(options.bodyAttributes ?? {})
    .map(([name, value]) => {
      if (!ATTRIBUTE_NAME.test(name)) throw new Error(`Invalid body attribute name: ${JSON.stringify(name)}`);
      return ` ${name}="${escapeAttribute(value)}"`;
    })
    .join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(contentSecurityPolicy(webview.cspSource, nonce))};">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttribute(asset(options.stylePath))}">
<title>${escapeAttribute(options.title)}</title>
</head>
<body${attributes}>
${options.bodyHtml ?? ''}
${options.scriptPath && nonce ? `<script nonce="${escapeAttribute(nonce)}" src="${escapeAttribute(asset(options.scriptPath))}"></script>` : ''}
</body>
</html>`;
}
