// The protected set-up that a system test makes on this machine with provision-protected.sh (/etc/rebench,
// /usr/local/bin/rebench-runner, the sudo rules in /etc/sudoers.d, a scoring user and a solution user),
// claimed by a marker file written before provisioning: a test touches only a set-up its own marker names,
// never a real one or another test's, and removes all of it afterwards.

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SshTarget, type SshTargetOptions } from '../../src/core/ssh/sshTarget';
import { INSTALLED_RUNNER, isRoot, PROTECTED_HOME, PROTECTED_SUDOERS, userExists } from './prepareMachine';
import type { Sshd } from './sshd';

export interface ProtectedSetupOptions {
  /** The test file, named in the marker. */
  testFile: string;
  /** The marker's file name in /etc/rebench. */
  marker: string;
  /** The system users the provisioning makes (the scoring user, the solution user). */
  users: string[];
  /** Tools the test needs beyond sudo, visudo, runuser, useradd and userdel. */
  tools?: string[];
  /** Users whose processes are killed before they are removed (a probe may leave one running on purpose). */
  kill?: string[];
  /** Other paths the test makes, removed with the set-up. */
  alsoRemove?: string[];
}

export interface ProtectedSetup {
  /** Whether the set-up on this machine is this test's (its marker is there). */
  ours(): boolean;
  /** Why this machine cannot host the test, or undefined. Never touches a set-up this test did not make. */
  unsuitable(): string | undefined;
  /** Removes what an earlier, interrupted run of this test left, then writes the marker: the set-up is this test's. */
  claim(solutionDir: string): void;
  /** Removes everything the provisioning made, and the solution folder; only when the set-up is this test's. */
  cleanUp(solutionDir: string): void;
}

const groupExists = (name: string) => spawnSync('getent', ['group', name], { stdio: 'ignore' }).status === 0;

export function protectedSetup(options: ProtectedSetupOptions): ProtectedSetup {
  const marker = path.join(PROTECTED_HOME, options.marker);
  const markerText = `made by ${options.testFile}; removed by it\n`;
  const ours = () => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === markerText;
  const setup: ProtectedSetup = {
    ours,
    unsuitable() {
      if (!isRoot) return 'it provisions the machine and must run as root';
      for (const tool of ['sudo', 'visudo', 'runuser', 'useradd', 'userdel', ...(options.tools ?? [])]) {
        if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) return `${tool} is not installed`;
      }
      if (ours()) return undefined;
      for (const p of [PROTECTED_HOME, INSTALLED_RUNNER, PROTECTED_SUDOERS, `${PROTECTED_SUDOERS}-solution`]) {
        if (fs.existsSync(p)) return `${p} exists and was not made by this test: a real protected set-up may be on this machine`;
      }
      for (const u of options.users) if (userExists(u)) return `the user ${u} exists and was not made by this test`;
      return undefined;
    },
    claim(solutionDir) {
      setup.cleanUp(solutionDir);
      fs.mkdirSync(PROTECTED_HOME, { mode: 0o755 });
      fs.writeFileSync(marker, markerText);
    },
    cleanUp(solutionDir) {
      if (!ours()) return;
      for (const u of options.kill ?? []) spawnSync('pkill', ['-KILL', '-u', u]);
      for (const p of [PROTECTED_SUDOERS, `${PROTECTED_SUDOERS}-solution`, INSTALLED_RUNNER, solutionDir, ...(options.alsoRemove ?? [])]) {
        fs.rmSync(p, { recursive: true, force: true });
      }
      // userdel refuses while the user runs a process: a scorer left running would be a bug the error names.
      for (const u of options.users) {
        if (userExists(u)) execFileSync('userdel', [u], { stdio: 'pipe' });
        if (groupExists(u)) execFileSync('groupdel', [u], { stdio: 'pipe' });
      }
      fs.rmSync(PROTECTED_HOME, { recursive: true, force: true });
    },
  };
  return setup;
}

/**
 * The participant's connection to the private sshd, connected: the sshd's login user and client key, its
 * host key pinned, no agent and no known_hosts file.
 */
export async function participantConnection(sshd: Sshd, logger?: SshTargetOptions['logger']): Promise<SshTarget> {
  const target = new SshTarget({
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    identityFiles: [sshd.clientKeyPath],
    agent: false,
    pinnedFingerprint: sshd.hostFingerprint,
    knownHostsFiles: [],
    logger,
  });
  await target.connect();
  return target;
}
