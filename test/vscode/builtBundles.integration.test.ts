// The BUILT extension (dist/extension.js, which VS Code loads here) on SSH failures: the SSH target comes
// from dist/ssh.js, another bundle with its own copy of the error classes, so the error reaching the
// extension's code, and the tests, is recognised by its brand and code (src/core/errors.ts). The organiser
// bundle is checked the same way in test/system/builtBundles.system.test.ts.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { isCodedError } from '../../src/core/errors';
import { SshError } from '../../src/core/ssh/sshError';
import type { ExtensionApi } from '../../src/extension';
import type { ConnectionChoice } from '../../src/ui/targets';
import { freePort } from '../support/sshd';
import { closeParticipantVm, participantVm, type ParticipantVm, type SshChoice } from '../support/vscodeVm';

describe('the built dist/extension.js on SSH failures', function () {
  this.timeout(60_000);
  let vm: ParticipantVm;
  let api: ExtensionApi;
  let choice: SshChoice;

  before(async () => {
    vm = await participantVm({ testEnvironments: false, choice: { environmentId: 'demo-fast-function' } });
    ({ api, choice } = vm);
    assert.equal(path.normalize((vm.ext.packageJSON as { main: string }).main), path.normalize('./dist/extension.js'));
  });

  after(() => closeParticipantVm(vm));

  /** Runs the connect action as the session view's button does, and returns what it failed with. */
  async function connectFailure(to: ConnectionChoice): Promise<unknown> {
    try {
      await api.actions.invoke('connect', 'view', to);
    } catch (e) {
      return e;
    }
    assert.fail('connect succeeded');
  }

  it('fails with host-key-mismatch, not retryable, for a host whose key is not the pinned one', async () => {
    const e = await connectFailure({ ...choice, fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    assert.ok(!(e instanceof SshError), "dist/ssh.js's class is not the sources' class");
    assert.ok(isCodedError(e), `recognised by its brand: ${String(e)}`);
    assert.equal(e.code, 'host-key-mismatch');
    assert.equal(e.retryable, false);
    assert.equal(api.controller.connected, false);
  });

  it('fails with network, retryable, when nothing listens', async () => {
    const e = await connectFailure({ ...choice, port: await freePort() });
    assert.ok(isCodedError(e), `recognised by its brand: ${String(e)}`);
    assert.equal(e.code, 'network');
    assert.equal(e.retryable, true);
  });
});
