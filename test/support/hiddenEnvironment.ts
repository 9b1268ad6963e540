// The hidden-scorer test environment (test/fixtures/environments/hidden-scorer) with scoring.visible set as a
// test needs it, in an environments folder of its own (for rebench.environmentsFolder).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const HIDDEN_ENV_ID = 'hidden-scorer';

/** Copies the fixture into a new folder with `visible` in its manifest; returns the environments folder. */
export function hiddenEnvironments(fixtures: string, visible: 'none' | 'validation'): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-hidden-env-'));
  fs.chmodSync(root, 0o755); // the test's login user reads the environment from here
  const dir = path.join(root, HIDDEN_ENV_ID);
  fs.cpSync(path.join(fixtures, HIDDEN_ENV_ID), dir, { recursive: true });
  const manifestPath = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { scoring: Record<string, unknown> };
  manifest.scoring.visible = visible;
  fs.writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return root;
}
