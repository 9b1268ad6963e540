// Types for scripts/codeServer.mjs, so the TypeScript UI harness can use it under `tsc --noEmit`.
import type { ChildProcess } from 'node:child_process';
import type { Browser } from 'playwright-core';

export declare const repoRoot: string;
export declare const node24Path: string;
export declare const codeServerEntry: string;
export declare const chromiumPath: string;
export declare const chromiumArgs: string[];
export declare const defaultUserSettings: Record<string, unknown>;

export declare function checkTestDeps(): void;
export declare function makeTempDir(prefix: string): string;
export declare function freePort(): Promise<number>;
export declare function writeUserSettings(userDataDir: string, settings?: Record<string, unknown>): void;

export declare function installVsix(options: {
  vsixPath: string;
  extensionsDir: string;
  userDataDir: string;
  env?: Record<string, string>;
}): Promise<string>;

export interface StartCodeServerOptions {
  userDataDir?: string;
  extensionsDir?: string;
  folder?: string;
  settings?: Record<string, unknown>;
  env?: Record<string, string>;
  smokeTestDriver?: boolean;
  onOutput?: (text: string) => void;
  startTimeoutMs?: number;
  keepScratch?: boolean;
}

export type WorkbenchPayload = [string, string][];

export interface CodeServer {
  port: number;
  origin: string;
  authority: string;
  userDataDir: string;
  extensionsDir: string;
  folder: string;
  process: ChildProcess;
  output(): string;
  exited(): { code: number | null; signal: NodeJS.Signals | null } | null;
  workbenchUrl(options?: { folder?: string; payload?: WorkbenchPayload }): string;
  stop(): Promise<void>;
}

export declare function startCodeServer(options?: StartCodeServerOptions): Promise<CodeServer>;
export declare function remoteUri(authority: string, absPath: string): string;
export declare function workbenchUrl(
  origin: string,
  authority: string,
  options?: { folder?: string; payload?: WorkbenchPayload },
): string;
export declare function launchChromium(): Promise<Browser>;
export declare function killGroup(pid: number | undefined, signal: NodeJS.Signals): void;
export declare function sleep(ms: number): Promise<void>;
