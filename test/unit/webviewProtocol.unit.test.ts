import * as assert from 'node:assert/strict';
import type { ScoreLogEntry } from '../../src/core/runnerProtocol';
import { errorContextKey, hostMessageSchema, JOB_OUTPUT_VIEW_LIMIT, snapshotSchema, viewMessageSchema, type Snapshot } from '../../src/core/webviewProtocol';
import { appendCapped } from '../../src/core/jobOutput';
import { LatestSnapshot } from '../../src/core/viewModel';

const HOSTILE = [
  '<img src=x onerror=alert(1)>',
  '<script>alert(2)</script>',
  '[x](javascript:alert(3))',
  '"\'><svg onload=alert(4)>',
  '\u202e\u0000\ud83d\ude00',
];

function entry(index: number, score: number | null, message: string): ScoreLogEntry {
  return {
    index,
    job_id: `job-${index}`,
    kind: 'score',
    started_at: '2026-03-14T10:00:00Z',
    ended_at: '2026-03-14T10:01:00.250+01:00',
    elapsed_s: 60 * index,
    score,
    message,
    exit_code: 0,
    signal: null,
    timed_out: false,
    killed: false,
    duration_s: 12.5,
    solution_hash: 'sha256:abc',
    counts: true,
    output_bytes: 10,
    output_truncated: false,
    prev_hash: 'a'.repeat(64),
    hash: 'b'.repeat(64),
  };
}

function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  return {
    connection: { kind: 'connected', target: 'me@vm:22', detail: 'Connected to me@vm:22' },
    environment: {
      id: 'demo',
      title: 'Demo',
      version: '1.0.0',
      direction: 'lower',
      aggregation: 'best',
      startingScore: 6,
      referenceScore: 2,
      pausesAllowed: false,
      visible: 'all',
    },
    session: {
      state: 'running',
      deadlineLocalMs: 1_800_000_000_000,
      secondsLeft: 7985,
      deadlineIso: '2027-01-15T08:00:00Z',
      startedIso: '2027-01-15T00:00:00Z',
      timeLimitS: 28800,
      clockOffsetMs: -120,
      mode: 'protected',
      solutionDir: '/home/me/solution',
    },
    job: { jobId: 'job-3', startedIso: '2027-01-15T02:00:00Z', output: 'step 1\n' },
    entries: [entry(0, 5, 'ok'), entry(1, null, 'crashed')],
    countedIndex: 0,
    logIntact: true,
    logProblem: null,
    scoreDisabledReason: 'A scoring job is running.',
    countdown: { warningS: 1800, criticalS: 300 },
    ...over,
  };
}

describe('webview protocol: view → host', () => {
  it('accepts ready and well-formed requests', () => {
    assert.ok(viewMessageSchema.safeParse({ type: 'ready' }).success);
    for (const action of ['connect', 'start', 'score', 'showHistory', 'exportLog', 'disconnect']) {
      const r = viewMessageSchema.safeParse({ type: 'request', id: 7, action });
      assert.ok(r.success, action);
    }
  });

  it('rejects unknown actions, bad ids and unknown types', () => {
    for (const bad of [
      { type: 'request', id: 1, action: 'deleteLog' },
      { type: 'request', id: -1, action: 'score' },
      { type: 'request', id: 1.5, action: 'score' },
      { type: 'request', id: '1', action: 'score' },
      { type: 'request', action: 'score' },
      { type: 'run', command: 'rm -rf /' },
      { action: 'score' },
      'ready',
      null,
      undefined,
      42,
    ]) {
      assert.equal(viewMessageSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });
});

describe('webview protocol: host → view', () => {
  it('accepts a snapshot, output deltas and replies', () => {
    assert.ok(hostMessageSchema.safeParse({ type: 'snapshot', snapshot: snapshot() }).success);
    assert.ok(
      hostMessageSchema.safeParse({ type: 'snapshot', snapshot: snapshot({ environment: null, session: null, job: null, entries: [], countedIndex: null }) })
        .success,
    );
    assert.ok(hostMessageSchema.safeParse({ type: 'jobOutput', jobId: 'job-3', text: 'more\n' }).success);
    assert.ok(hostMessageSchema.safeParse({ type: 'reply', id: 3, ok: true }).success);
    assert.ok(hostMessageSchema.safeParse({ type: 'reply', id: 3, ok: false, error: 'Not connected to the VM.' }).success);
  });

  it('rejects malformed snapshots and messages', () => {
    const bad: unknown[] = [
      { type: 'snapshot', snapshot: { ...snapshot(), entries: 'nope' } },
      { type: 'snapshot', snapshot: { ...snapshot(), connection: { kind: 'teleported', target: null, detail: '' } } },
      { type: 'snapshot', snapshot: { ...snapshot(), countedIndex: 0.5 } },
      { type: 'snapshot', snapshot: { ...snapshot(), entries: [{ ...entry(0, 1, 'x'), hash: 'not-a-hash' }] } },
      { type: 'snapshot', snapshot: { ...snapshot(), entries: [{ ...entry(0, 1, 'x'), score: Number.POSITIVE_INFINITY }] } },
      { type: 'snapshot', snapshot: { ...snapshot(), entries: [{ ...entry(0, 1, 'x'), started_at: 'yesterday' }] } },
      { type: 'snapshot' },
      { type: 'jobOutput', jobId: 'job-3' },
      { type: 'reply', id: 'x', ok: true },
      { type: 'eval', code: 'alert(1)' },
    ];
    for (const message of bad) assert.equal(hostMessageSchema.safeParse(message).success, false, JSON.stringify(message).slice(0, 120));
  });

  it('carries hostile strings as data: they round-trip through JSON unchanged', () => {
    const hostile = snapshot({
      connection: { kind: 'failed', target: HOSTILE[3]!, detail: HOSTILE[0]! },
      environment: { ...snapshot().environment!, title: HOSTILE[2]!, id: HOSTILE[1]! },
      job: { jobId: HOSTILE[4]!, startedIso: '2027-01-15T02:00:00Z', output: HOSTILE.join('\n') },
      entries: HOSTILE.map((m, i) => entry(i, i % 2 ? null : i, m)),
      logIntact: false,
      logProblem: HOSTILE[1]!,
      scoreDisabledReason: HOSTILE[0]!,
    });
    // postMessage serialises structurally; JSON is the stricter of the two.
    const wire = JSON.parse(JSON.stringify({ type: 'snapshot', snapshot: hostile })) as unknown;
    const parsed = hostMessageSchema.safeParse(wire);
    assert.ok(parsed.success);
    assert.equal(parsed.data.type, 'snapshot');
    if (parsed.data.type !== 'snapshot') return;
    assert.deepEqual(parsed.data.snapshot, hostile);
    assert.deepEqual(
      parsed.data.snapshot.entries.map((e) => e.message),
      HOSTILE,
    );
    assert.equal(parsed.data.snapshot.environment?.title, '[x](javascript:alert(3))');
  });

  it('drops unknown fields from a snapshot', () => {
    const parsed = snapshotSchema.parse({ ...snapshot(), extra: '<script>' });
    assert.equal('extra' in parsed, false);
  });
});

describe("an error's context: the state it is about", () => {
  it('changes when a failed connection is followed by a good one, a start or a new score, and not with the ticking clock', () => {
    const failed = snapshot({ connection: { kind: 'disconnected', target: 'me@vm:22', detail: 'x' }, session: null, environment: null, entries: [] });
    const connected = snapshot();
    assert.notEqual(errorContextKey(failed), errorContextKey(connected), 'a connect error outlives the connection that followed');
    assert.equal(errorContextKey(connected), errorContextKey(snapshot({ connection: { ...connected.connection, detail: 'other words' } })));
    const notStarted = snapshot({ session: { ...connected.session!, state: 'not_started' } });
    assert.notEqual(errorContextKey(notStarted), errorContextKey(connected), 'a start error outlives the start');
    assert.equal(errorContextKey(connected), errorContextKey(snapshot({ session: { ...connected.session!, secondsLeft: 1 } })));
    assert.notEqual(
      errorContextKey(connected),
      errorContextKey(snapshot({ entries: [...connected.entries, entry(2, 4, 'ok')] })),
      'a score error outlives the next score',
    );
  });
});

describe('job output capping', () => {
  it('keeps the last JOB_OUTPUT_VIEW_LIMIT characters', () => {
    assert.equal(appendCapped('abc', 'def', 10), 'abcdef');
    assert.equal(appendCapped('abcdef', 'ghij', 8), 'cdefghij');
    assert.equal(appendCapped('old', 'x'.repeat(20), 8), 'x'.repeat(8));
    const big = appendCapped('', 'y'.repeat(100 * 1024 * 1024), JOB_OUTPUT_VIEW_LIMIT);
    assert.equal(big.length, JOB_OUTPUT_VIEW_LIMIT);
  });

  it('never starts with half a surrogate pair', () => {
    const out = appendCapped('', `a${'😀'.repeat(5)}`, 4);
    assert.equal(out, '😀😀');
    assert.ok(!/^[\udc00-\udfff]/.test(appendCapped('', `${'😀'.repeat(5)}`, 5)));
  });
});

describe('LatestSnapshot (host side)', () => {
  it('keeps output appended since the last snapshot of the same job', () => {
    const store = new LatestSnapshot();
    store.set(snapshot());
    assert.equal(store.appendJobOutput('job-3', 'step 2\n'), true);
    assert.equal(store.appendJobOutput('job-other', 'not mine\n'), false);
    // The next snapshot of the same job was built before the delta: it must not lose it.
    const sent = store.set(snapshot({ scoreDisabledReason: null }));
    assert.equal(sent.job?.output, 'step 1\nstep 2\n');
    assert.equal(sent.scoreDisabledReason, null);
    // A snapshot with more output wins.
    assert.equal(
      store.set(snapshot({ job: { jobId: 'job-3', startedIso: '2027-01-15T02:00:00Z', output: 'step 1\nstep 2\nstep 3\n' } })).job?.output,
      'step 1\nstep 2\nstep 3\n',
    );
    // A new job starts from its own output.
    assert.equal(store.set(snapshot({ job: { jobId: 'job-4', startedIso: '2027-01-15T03:00:00Z', output: '' } })).job?.output, '');
    assert.equal(store.set(snapshot({ job: null })).job, null);
    assert.equal(store.appendJobOutput('job-4', 'late\n'), false);
  });

  it("caps the stored output and does not modify the caller's snapshot", () => {
    const store = new LatestSnapshot();
    const original = snapshot();
    store.set(original);
    store.appendJobOutput('job-3', 'z'.repeat(JOB_OUTPUT_VIEW_LIMIT + 10));
    assert.equal(store.value?.job?.output.length, JOB_OUTPUT_VIEW_LIMIT);
    assert.equal(original.job?.output, 'step 1\n');
  });
});
