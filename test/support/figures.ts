// Figures for the README's "Reliability" table: tests that inject faults or try inputs record what
// they did here, and `node scripts/reliability-table.mjs` turns the records of the last run into the table.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const FIGURES_DIR = path.resolve(__dirname, '../../.test-output/reliability');

export interface Figure {
  /** The test's name as it should read in the table. */
  test: string;
  /** What it proves, in one sentence. */
  proves: string;
  /** Faults injected (sshd stops, kills, stalls, clock shifts, concurrent requests…), if any. */
  faultsInjected?: number;
  /** Faults after which everything was as it should be. */
  faultsSurvived?: number;
  /** Score entries lost or duplicated (must be 0). */
  entriesLost?: number;
  /** Inputs tried (property-based tests), and the parser they went to. */
  inputsTried?: number;
  parser?: string;
}

/** Records one figure; file names are unique per test so parallel tiers do not collide. */
export function recordFigure(figure: Figure): void {
  fs.mkdirSync(FIGURES_DIR, { recursive: true });
  const name = figure.test.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 80);
  fs.writeFileSync(path.join(FIGURES_DIR, `${name}.json`), `${JSON.stringify({ ...figure, at: new Date().toISOString() }, null, 2)}\n`);
}
