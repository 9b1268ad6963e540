// Runs inside the extension host of a real VS Code (code-server): the extension under development is
// loaded from the repository (its dist/ bundle) exactly as VS Code would load it.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

const EXTENSION_ID = 'rebench-tools.rebench-session';

function ourExtension(): vscode.Extension<unknown> {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(ext, `${EXTENSION_ID} is not loaded in the extension host`);
  return ext;
}

describe('RE-Bench Session in a real VS Code', () => {
  it('is loaded from the development folder', () => {
    const ext = ourExtension();
    const pkg = ext.packageJSON as { name?: string; publisher?: string; main?: string };
    assert.equal(`${pkg.publisher}.${pkg.name}`, EXTENSION_ID);
    assert.equal(pkg.main, './dist/extension.js');
  });

  it('activates without an error', async () => {
    const ext = ourExtension();
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  it('runs in the remote (workspace) extension host, as it does next to a VM', () => {
    assert.ok(vscode.env.remoteName, 'vscode.env.remoteName is not set: not a remote extension host');
    assert.equal(ourExtension().extensionKind, vscode.ExtensionKind.Workspace);
  });

  it('registers every command it declares', async () => {
    const pkg = ourExtension().packageJSON as { contributes?: { commands?: { command: string }[] } };
    const declared = (pkg.contributes?.commands ?? []).map((c) => c.command);
    await ourExtension().activate();
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = declared.filter((c) => !registered.has(c));
    assert.deepEqual(missing, [], `declared in package.json but not registered: ${missing.join(', ')}`);
  });
});
