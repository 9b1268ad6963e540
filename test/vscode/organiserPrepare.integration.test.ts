// "RE-Bench Organiser: Prepare VM…" inside a real VS Code: the command loads the organiser bundle on first
// use and prepares this machine over a private sshd on loopback, as an administrator with a real sudo rule
// (test/support/prepareMachine.ts); a second run changes nothing; a failure is shown and rejects.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { parseProfile } from '../../src/core/profile';
import type { PrepareResult } from '../../src/organiser/prepare';
import { OrganiserCommands } from '../../src/ui/organiserConstants';
import type { PrepareVmArgs } from '../../src/ui/organiserPrepare';
import { claimMachine, type PrepareMachine } from '../support/prepareMachine';
import { loginUser, type Sshd, startSshd, TEST_USER } from '../support/sshd';

const EXTENSION_ID = 'rebench-tools.rebench-session';

describe('Organiser: Prepare VM… in a real VS Code', function () {
  this.timeout(180_000);
  let machine: PrepareMachine | undefined;
  let sshd: Sshd;
  let home = '';
  let args: PrepareVmArgs;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-prepare-vscode-'));

  before(async function () {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, 'the extension is loaded');
    await ext.activate();
    const { user } = loginUser();
    home = loginUser().home;
    const claimed = await claimMachine(TEST_USER, 'test/vscode/organiserPrepare.integration.test.ts');
    if (typeof claimed === 'string') {
      console.log(`      skipped: ${claimed}`);
      this.skip();
    }
    machine = claimed as PrepareMachine;
    machine.wipe(home);
    sshd = await startSshd();
    args = {
      host: sshd.host,
      port: sshd.port,
      admin: machine.admin,
      identityFiles: [sshd.clientKeyPath],
      participant: user,
      environmentDir: path.join(ext.extensionPath, 'test', 'fixtures', 'environments', 'protected-demo'),
      profilePath: path.join(scratch, 'participant.json'),
      scoringUser: machine.scorer,
      hostKeyFingerprint: sshd.hostFingerprint,
      knownHostsFiles: [],
    };
  });

  after(async () => {
    await sshd?.stop();
    const problems = machine ? machine.release(home) : [];
    fs.rmSync(scratch, { recursive: true, force: true });
    assert.deepEqual(problems, [], 'clean-up');
  });

  it('prepares the VM, measures the starting score there and writes the profile; a second run changes nothing', async () => {
    const first = await vscode.commands.executeCommand<PrepareResult>(OrganiserCommands.prepare, args);
    assert.ok(first.changed.length >= 9, first.changed.join('\n'));
    assert.equal(first.startingScore?.measured, -42);
    const parsed = parseProfile(fs.readFileSync(args.profilePath as string, 'utf8'), 'profile');
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    assert.equal(parsed.value.host_key_fingerprint, sshd.hostFingerprint);
    assert.equal(parsed.value.protected, true);
    assert.ok(fs.existsSync('/usr/local/bin/rebench-runner'));

    const second = await vscode.commands.executeCommand<PrepareResult>(OrganiserCommands.prepare, args);
    assert.deepEqual(second.changed, []);
    assert.equal(second.startingScore?.measuredNow, false);
  });

  it('a failure (an administrator without sudo) rejects with the message that says what to do', async () => {
    await assert.rejects(
      Promise.resolve(vscode.commands.executeCommand(OrganiserCommands.prepare, { ...args, admin: machine?.noSudo })),
      new RegExp(`${machine?.noSudo} cannot use sudo on the VM without a password .* give ${machine?.noSudo} passwordless sudo`),
    );
  });
});
