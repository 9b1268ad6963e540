// One way to register a command: a failure is logged with its stack, shown to the user by `show`, and
// re-thrown so that callers (tests, the session view) learn that it failed.
import * as vscode from 'vscode';
import { errorMessage } from '../core/errors';
import type { ExtensionLog } from './extensionLog';

export function registerReportingCommand(
  context: vscode.ExtensionContext,
  log: ExtensionLog,
  id: string,
  run: (...args: any[]) => Promise<unknown> | unknown,
  show: (message: string, args: unknown[]) => void,
): void {
  context.subscriptions.push(
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        return await run(...args);
      } catch (e) {
        log.error(`${id} failed: ${e instanceof Error && e.stack ? e.stack : errorMessage(e)}`);
        show(errorMessage(e), args);
        throw e;
      }
    }),
  );
}
