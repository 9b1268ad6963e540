// Runs the *.integration.test.ts files inside a real VS Code extension host, with the standard
// @vscode/test-electron runTests(). The "VS Code executable" is test/vscode/launcher, which starts
// code-server and drives its workbench in headless Chromium (desktop VS Code cannot be downloaded here).
//
// Usage: node --require tsx/cjs test/vscode/runIntegration.ts   (after `node esbuild.js`)
// Environment:
//   REBENCH_TEST_RESULTS  where the results JSON goes (default: a temporary file); see IntegrationResults
//   REBENCH_TEST_GREP     only run tests whose full title matches this pattern
//   REBENCH_LAUNCHER_TIMEOUT_S, REBENCH_VERBOSE, REBENCH_CODE_SERVER_LOG  see test/vscode/launcher
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { runTests } from '@vscode/test-electron';
import type { IntegrationResults } from './index';

const repoRoot = path.resolve(__dirname, '../..');
const testsDir = path.join(repoRoot, 'test/vscode');
const outDir = path.join(repoRoot, 'out/vscode-tests');
const launcher = path.join(testsDir, 'launcher');

function findTestSources(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.integration.test.ts'))
    .map((f) => path.join(dir, f))
    .sort();
}

/** Bundles the test index and each test file for the extension host (Node, CommonJS). */
async function buildTests(): Promise<string[]> {
  const sources = findTestSources(testsDir);
  if (sources.length === 0) throw new Error(`No *.integration.test.ts files under ${testsDir}.`);
  // Start clean so a deleted test does not keep running from a stale bundle.
  fs.rmSync(outDir, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [path.join(testsDir, 'index.ts'), ...sources],
    outdir: outDir,
    outbase: testsDir,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    sourcesContent: false,
    logLevel: 'warning',
    // vscode is provided by the extension host; mocha is loaded from node_modules at run time.
    external: ['vscode', 'mocha', 'cpu-features', '*.node'],
  });
  return sources;
}

function readResults(file: string): IntegrationResults | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as IntegrationResults;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  if (!fs.existsSync(path.join(repoRoot, 'dist/extension.js'))) {
    throw new Error('dist/extension.js is missing: build the extension first with "node esbuild.js".');
  }
  const sources = await buildTests();
  console.log(`[vscode] built ${sources.length} integration test file(s) into ${path.relative(repoRoot, outDir)}/`);

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-vscode-tests-'));
  const resultsFile = process.env.REBENCH_TEST_RESULTS ?? path.join(scratch, 'results.json');
  fs.rmSync(resultsFile, { force: true });

  let crash: string | undefined;
  try {
    await runTests({
      vscodeExecutablePath: launcher,
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: path.join(outDir, 'index.js'),
      // Fresh profile folders per run (the default would be .vscode-test/ in the repository).
      launchArgs: [`--user-data-dir=${path.join(scratch, 'user-data')}`, `--extensions-dir=${path.join(scratch, 'extensions')}`],
      extensionTestsEnv: { REBENCH_TEST_RESULTS: resultsFile },
    });
  } catch (err) {
    crash = err instanceof Error ? err.message : String(err);
  }
  const results = readResults(resultsFile);
  fs.rmSync(scratch, { recursive: true, force: true });
  return report(results, crash);
}

function report(results: IntegrationResults | undefined, crash: string | undefined): number {
  if (!results) {
    console.error(`[vscode] no results were reported by the extension host${crash ? ` (${crash})` : ''}.`);
    return 1;
  }
  for (const f of results.failures) console.error(`[vscode] FAILED ${f.title}\n${f.error}`);
  console.log(`[vscode] ${results.passed} passed, ${results.failed} failed, ${results.pending} pending`);
  return results.failed > 0 || crash ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[vscode] ERROR: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
