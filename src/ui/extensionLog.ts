// The extension's one log: a LogOutputChannel, created first in activate. Key paths and fingerprints
// are logged; passphrases, passwords and key contents never are.
import * as vscode from 'vscode';
import type { Logger } from '../core/logger';

export class ExtensionLog implements Logger, vscode.Disposable {
  readonly channel: vscode.LogOutputChannel;

  constructor() {
    this.channel = vscode.window.createOutputChannel('RE-Bench', { log: true });
  }

  info(message: string): void {
    this.channel.info(message);
  }

  warn(message: string): void {
    this.channel.warn(message);
  }

  error(message: string): void {
    this.channel.error(message);
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}
