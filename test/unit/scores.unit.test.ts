import * as assert from 'node:assert/strict';
import type { ScoreLogEntry } from '../../src/core/runnerProtocol';
import { countedEntry, formatNormalised, formatScore, lastScored, normalise } from '../../src/core/scores';

function entry(index: number, score: number | null, counts = true): ScoreLogEntry {
  return {
    index,
    job_id: `j${index}`,
    kind: 'score',
    started_at: '2026-11-23T10:00:00Z',
    ended_at: '2026-11-23T10:00:05Z',
    elapsed_s: index * 60,
    score,
    message: '',
    exit_code: 0,
    signal: null,
    timed_out: false,
    killed: false,
    duration_s: 5,
    solution_hash: 'sha256:00',
    counts,
    output_bytes: 0,
    output_truncated: false,
    prev_hash: '0'.repeat(64),
    hash: '1'.repeat(64),
  };
}

describe('scores', () => {
  it('normalises to 0 at the start and 1 at the reference in both directions', () => {
    assert.equal(normalise(5.605, 5.605, 4.543), 0);
    assert.equal(normalise(4.543, 5.605, 4.543), 1);
    assert.equal(normalise(0.84, 0.24, 0.84), 1);
    assert.ok(normalise(6, 5.605, 4.543) < 0);
  });

  it('picks the best by direction and never counts "no score" as 0', () => {
    const log = [entry(0, 5.1), entry(1, null), entry(2, 4.7), entry(3, 4.9)];
    assert.equal(countedEntry(log, 'lower', 'best')?.index, 2);
    assert.equal(countedEntry(log, 'higher', 'best')?.index, 0);
    assert.equal(countedEntry([entry(0, null)], 'lower', 'best'), undefined);
  });

  it('counts the last scored entry where the last score counts', () => {
    const log = [entry(0, 0.5), entry(1, 0.9), entry(2, 0.3), entry(3, null)];
    assert.equal(countedEntry(log, 'higher', 'last')?.index, 2);
    assert.equal(lastScored(log)?.index, 2);
  });

  it('ignores entries that started after the deadline', () => {
    const log = [entry(0, 5), entry(1, 1, false)];
    assert.equal(countedEntry(log, 'lower', 'best')?.index, 0);
  });

  it('formats scores readably', () => {
    assert.equal(formatScore(null), 'no score');
    assert.equal(formatScore(4.543219), '4.5432');
    assert.equal(formatScore(-0.405), '-0.405');
    assert.equal(formatScore(1e9), '1.000e+9');
  });

  it('formats a normalised score as a fraction of the way, never as a power of ten', () => {
    // An untouched solution scores a hair off the starting score: that is 0 of the way, not -3.869e-5.
    assert.equal(formatNormalised(-3.869e-5), '0');
    assert.equal(formatNormalised(4e-5), '0');
    assert.equal(formatNormalised(0.12345), '0.123');
    assert.equal(formatNormalised(-0.25), '-0.25');
    assert.equal(formatNormalised(1), '1');
    assert.equal(formatNormalised(1234.56789), '1234.568');
    assert.equal(formatNormalised(Number.NaN), '—');
  });
});
