// The participant's side of the VS Code tests: the extension activated inside the real VS Code, a private
// sshd on loopback as the participant's VM (a fresh home), the test environments as the extension's
// environments folder, and the connection choice the session profile would give. Only the VS Code tests
// import this (it needs the `vscode` module of the extension host).
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ExtensionApi } from '../../src/extension';
import type { ConnectionChoice } from '../../src/ui/targets';
import { resetUserHome, startSshd, type Sshd } from './sshd';

export const EXTENSION_ID = 'rebench-tools.rebench-session';

export type SshChoice = Extract<ConnectionChoice, { kind: 'ssh' }>;

/** The extension, activated, with the API its tests read. */
export async function activateExtension(): Promise<{ ext: vscode.Extension<ExtensionApi>; api: ExtensionApi }> {
  const ext = vscode.extensions.getExtension<ExtensionApi>(EXTENSION_ID);
  assert.ok(ext, 'the extension is loaded');
  return { ext, api: await ext.activate() };
}

export interface ParticipantVm {
  ext: vscode.Extension<ExtensionApi>;
  api: ExtensionApi;
  sshd: Sshd;
  /** How the participant connects to the VM (unprotected mode unless the options say otherwise). */
  choice: SshChoice;
}

export interface ParticipantVmOptions {
  /** The choice's name and environment, and anything else of it (study settings, protected mode). */
  choice?: Partial<SshChoice>;
  /** Use the test environments (test/fixtures/environments) rather than the packaged ones; default true. */
  testEnvironments?: boolean;
}

/** Starts the participant's VM (a private sshd, the login user's home emptied) and activates the extension. */
export async function participantVm(options: ParticipantVmOptions = {}): Promise<ParticipantVm> {
  const { ext, api } = await activateExtension();
  if (options.testEnvironments !== false) {
    await vscode.workspace
      .getConfiguration('rebench')
      .update('environmentsFolder', path.join(ext.extensionPath, 'test', 'fixtures', 'environments'), vscode.ConfigurationTarget.Global);
  }
  const sshd = await startSshd();
  resetUserHome();
  const choice: SshChoice = {
    kind: 'ssh',
    name: 'test VM',
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    fingerprint: sshd.hostFingerprint,
    identityFile: sshd.clientKeyPath,
    environmentId: 'slow-scorer',
    protectedMode: false,
    ...options.choice,
  };
  return { ext, api, sshd, choice };
}

/** Connects to the VM and starts the clock, as the palette does once the pre-flight is confirmed; returns the solution folder. */
export async function connectAndStart(vm: ParticipantVm): Promise<string> {
  assert.equal(await vscode.commands.executeCommand('rebench.connect', vm.choice), true);
  assert.equal(await vscode.commands.executeCommand('rebench.startSession', { confirmed: true }), true);
  return vm.api.controller.snapshot().session!.solutionDir;
}

/** Disconnects, forgets the test environments, stops the VM's sshd and empties the login user's home. */
export async function closeParticipantVm(vm: ParticipantVm | undefined): Promise<void> {
  await vm?.api.controller.disconnect(true);
  await vscode.workspace.getConfiguration('rebench').update('environmentsFolder', undefined, vscode.ConfigurationTarget.Global);
  await vm?.sshd.stop();
  resetUserHome();
}
