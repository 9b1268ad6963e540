// mocha reporter: mocha's usual "spec" output, plus the counts written as JSON to $REBENCH_TEST_RESULTS so
// scripts/test.mjs can total them (same shape as the extension-host results: see test/vscode/index.ts).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Mocha = require('mocha');

const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING, EVENT_RUN_END } = Mocha.Runner.constants;

class ResultsReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const started = Date.now();
    const results = { passed: 0, failed: 0, pending: 0, failures: [], durationMs: 0 };
    runner.on(EVENT_TEST_PASS, () => {
      results.passed++;
    });
    runner.on(EVENT_TEST_PENDING, () => {
      results.pending++;
    });
    // Also emitted for failing hooks, which then count as failures.
    runner.on(EVENT_TEST_FAIL, (test, err) => {
      results.failed++;
      results.failures.push({
        title: test.fullTitle(),
        error: err && err.stack ? String(err.stack) : String(err),
      });
    });
    runner.once(EVENT_RUN_END, () => {
      results.durationMs = Date.now() - started;
      const file = process.env.REBENCH_TEST_RESULTS;
      if (!file) return;
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify(results, null, 2));
    });
  }
}

module.exports = ResultsReporter;
