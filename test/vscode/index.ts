// Entry point that VS Code's extension host loads as extensionTestsPath: runs every bundled
// *.integration.test.js beside it with mocha and reports the counts to the outer test run.
// Built to out/vscode-tests/index.js by test/vscode/runIntegration.ts; mocha itself is resolved at run time
// from the repository's node_modules.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

export interface IntegrationResults {
  passed: number;
  failed: number;
  pending: number;
  failures: { title: string; error: string }[];
  durationMs: number;
}

function findTestFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.integration.test.js'))
    .map((f) => path.join(dir, f))
    .sort();
}

function writeResults(results: IntegrationResults): void {
  const file = process.env.REBENCH_TEST_RESULTS;
  if (!file) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(results, null, 2));
}

export async function run(): Promise<void> {
  const started = Date.now();
  const results: IntegrationResults = { passed: 0, failed: 0, pending: 0, failures: [], durationMs: 0 };
  const files = findTestFiles(__dirname);
  if (files.length === 0) {
    results.failed = 1;
    results.failures.push({ title: 'loading integration tests', error: `no *.integration.test.js in ${__dirname}` });
    writeResults(results);
    throw new Error(`No integration tests found in ${__dirname}: build them with test/vscode/runIntegration.ts.`);
  }

  const mocha = new Mocha({ ui: 'bdd', reporter: 'spec', color: false, timeout: 60_000 });
  const grep = process.env.REBENCH_TEST_GREP;
  if (grep) mocha.grep(grep);
  for (const file of files) mocha.addFile(file);

  await new Promise<void>((resolve) => {
    const runner = mocha.run(() => resolve());
    runner.on('pass', () => {
      results.passed++;
    });
    runner.on('pending', () => {
      results.pending++;
    });
    // Also emitted for failing hooks, which then count as failures.
    runner.on('fail', (test, err: unknown) => {
      results.failed++;
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      results.failures.push({ title: test.fullTitle(), error });
    });
  });

  results.durationMs = Date.now() - started;
  writeResults(results);
  console.log(`integration tests: ${results.passed} passed, ${results.failed} failed, ${results.pending} pending`);
  if (results.failed > 0) {
    throw new Error(`${results.failed} integration test(s) failed.`);
  }
}
