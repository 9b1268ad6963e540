// The view model: one snapshot for every view, with the countdown thresholds of the settings, and the
// time-left rules that the status bar (src/ui/countdownStatusBar.ts) and the webview
// (src/webview/countdown.ts) both apply to it, so they cannot disagree.
import * as assert from 'node:assert/strict';
import type { RunnerStatus, ScoreLogEntry } from '../../src/core/runnerProtocol';
import { countdownUrgency, DEFAULT_COUNTDOWN, secondsLeftNow, timeGivenNotice, timeGivenTotal } from '../../src/core/timeLeft';
import { buildViewModel, type SessionSource } from '../../src/core/viewModel';
import { snapshotSchema, type SessionView } from '../../src/core/webviewProtocol';
import { timerText } from '../../src/webview/countdown';

const NOW = Date.parse('2027-03-01T12:00:00Z');

function status(over: Partial<RunnerStatus> = {}): RunnerStatus {
  return {
    runner_version: '1',
    mode: 'unprotected',
    state: 'running',
    started_at: '2027-03-01T10:00:00Z',
    deadline: '2027-03-01T12:45:00Z',
    ended_at: null,
    now: '2027-03-01T12:00:00Z',
    seconds_left: 45 * 60,
    elapsed_s: 2 * 3600,
    paused_s: 0,
    entries: 0,
    counted: null,
    job: null,
    log_intact: true,
    solution_dir: '/home/p/solution',
    environment: {
      id: 'demo',
      title: 'Demo',
      version: '1',
      direction: 'higher',
      aggregation: 'best',
      starting_score: 0,
      reference_score: 1,
      time_limit_s: 8 * 3600,
      pauses_allowed: true,
    },
    ...over,
  } as RunnerStatus;
}

function source(s: RunnerStatus, offsetMs = 0, entries: ScoreLogEntry[] = []): SessionSource {
  return {
    status: s,
    entries,
    job: undefined,
    connection: { kind: 'connected' },
    logProblem: null,
    client: { target: { label: 'p@vm' }, clock: { offsetMs } },
    secondsLeft: () => s.seconds_left,
    scoreDisabledReason: () => null,
  } as SessionSource;
}

describe('the view model', () => {
  it('carries the countdown thresholds it is given, connected or not, and passes its own schema', () => {
    const countdown = { warningS: 3600, criticalS: 600 };
    const offline = buildViewModel({ session: undefined, connecting: true, target: 'p@vm', countdown, nowMs: NOW });
    assert.deepEqual(offline.countdown, countdown);
    assert.equal(offline.connection.kind, 'connecting');
    assert.equal(offline.connection.detail, 'Connecting to p@vm…');
    assert.ok(snapshotSchema.safeParse(offline).success);

    const online = buildViewModel({ session: source(status()), countdown, nowMs: NOW });
    assert.deepEqual(online.countdown, countdown);
    assert.equal(online.connection.kind, 'connected');
    assert.ok(snapshotSchema.safeParse(online).success, 'a built snapshot is one the webview accepts');
  });

  it("puts the VM's deadline on this machine's clock: the measured offset is taken off", () => {
    // The VM's clock runs 90 s ahead of this machine: its 12:45:00 is 12:43:30 here.
    const snap = buildViewModel({ session: source(status(), 90_000), countdown: DEFAULT_COUNTDOWN, nowMs: NOW });
    assert.equal(snap.session?.deadlineLocalMs, Date.parse('2027-03-01T12:43:30Z'));
    assert.equal(secondsLeftNow(snap.session!, NOW), 43 * 60 + 30);
  });

  it('gives the status bar and the session view the same urgency for the same snapshot, by its thresholds', () => {
    const session = buildViewModel({ session: source(status()), countdown: DEFAULT_COUNTDOWN, nowMs: NOW }).session!;
    // 45 minutes left: normal under the default 30-minute warning, a warning under a 60-minute one.
    for (const [countdown, expected] of [
      [DEFAULT_COUNTDOWN, 'normal'],
      [{ warningS: 3600, criticalS: 300 }, 'warning'],
      [{ warningS: 3600 * 2, criticalS: 3600 }, 'critical'],
    ] as const) {
      assert.equal(countdownUrgency(session, countdown, NOW), expected, JSON.stringify(countdown));
      assert.equal(timerText(session, countdown, NOW).tone, expected, `the view's tone for ${JSON.stringify(countdown)}`);
    }
  });

  it('counts time left the same way in every state', () => {
    const base = buildViewModel({ session: source(status()), countdown: DEFAULT_COUNTDOWN, nowMs: NOW }).session!;
    const running: SessionView = { ...base, deadlineLocalMs: NOW + 10_500 };
    assert.equal(secondsLeftNow(running, NOW), 11, 'a part second counts as a second');
    assert.equal(secondsLeftNow({ ...running, deadlineLocalMs: NOW - 5_000 }, NOW), 0, 'never below zero');
    assert.equal(secondsLeftNow({ ...base, state: 'paused', secondsLeft: 99.2 }, NOW), 100, 'paused: what the VM said, frozen');
    assert.equal(secondsLeftNow({ ...base, state: 'not_started' }, NOW), null);
    assert.equal(countdownUrgency({ ...base, state: 'ended', secondsLeft: 3600 }, DEFAULT_COUNTDOWN, NOW), 'over');
    assert.equal(timerText({ ...base, state: 'paused', secondsLeft: 60 }, DEFAULT_COUNTDOWN, NOW).tone, 'stopped');
  });

  it('keeps counting down a session left running while connecting elsewhere fails, and says it is not connected', () => {
    // The VM's clock runs 90 s ahead: its 12:45:00 deadline is 12:43:30 here.
    const running = buildViewModel({ session: source(status(), 90_000), countdown: DEFAULT_COUNTDOWN, nowMs: NOW });
    const later = NOW + 10 * 60_000;
    const connecting = buildViewModel({
      session: undefined,
      connecting: true,
      target: 'q@other',
      leftRunning: running,
      countdown: DEFAULT_COUNTDOWN,
      nowMs: NOW,
    });
    assert.equal(connecting.connection.kind, 'connecting');
    assert.match(connecting.connection.detail, /^Connecting to q@other… Your session on p@vm goes on: its clock runs on the VM/);
    const failed = buildViewModel({ session: undefined, target: 'q@other', leftRunning: running, countdown: DEFAULT_COUNTDOWN, nowMs: later });
    assert.equal(failed.connection.kind, 'disconnected');
    assert.equal(failed.connection.target, 'p@vm');
    assert.match(failed.connection.detail, /^Not connected\. Your session on p@vm goes on/);
    assert.equal(failed.session?.state, 'running');
    // Ten minutes on, the countdown has run ten minutes from the last known deadline, on this machine's clock.
    assert.equal(secondsLeftNow(failed.session!, later), 33 * 60 + 30);
    assert.equal(timerText(failed.session!, failed.countdown, later).value, '0:33:30');
    assert.equal(failed.scoreDisabledReason, 'Not connected to p@vm.');
    assert.ok(snapshotSchema.safeParse(failed).success);
    // Without a session left running, nothing of the old one is shown.
    assert.equal(buildViewModel({ session: undefined, target: 'q@other', countdown: DEFAULT_COUNTDOWN, nowMs: later }).session, null);
  });
});

describe('the view model: time given back', () => {
  const countdown = DEFAULT_COUNTDOWN;
  it('carries no notice without grants, and the total and the latest grant with its reason with them', () => {
    const none = buildViewModel({ session: source(status()), countdown, nowMs: NOW });
    assert.equal(none.session?.timeGiven, null);
    assert.equal(timeGivenNotice(none.session!), null);
    const granted = status({
      deadline: '2027-03-01T13:15:00Z',
      granted_s: 2400,
      grants: [
        {
          kind: 'infrastructure_pause',
          seconds: 600,
          from: '2027-03-01T10:30:00Z',
          to: '2027-03-01T10:40:00Z',
          reason: 'network outage',
          by: 'ops',
          at: '2027-03-01T11:00:00Z',
        },
        { kind: 'extend', seconds: 1800, from: null, to: null, reason: 'the VM was rebooted', by: 'ops', at: '2027-03-01T11:50:00Z' },
      ],
    });
    const snap = buildViewModel({ session: source(granted), countdown, nowMs: NOW });
    assert.ok(snapshotSchema.safeParse(snap).success);
    assert.deepEqual(snap.session?.timeGiven, {
      totalS: 2400,
      grants: 2,
      latest: { kind: 'extend', seconds: 1800, reason: 'the VM was rebooted', by: 'ops', at: '2027-03-01T11:50:00Z' },
    });
    // The new deadline is the VM's, on this machine's clock: the status says 13:15 UTC.
    assert.equal(snap.session?.deadlineLocalMs, Date.parse('2027-03-01T13:15:00Z'));
    const time = new Date(Date.parse('2027-03-01T13:15:00Z')).toLocaleTimeString([], { hourCycle: 'h23' });
    assert.equal(timeGivenNotice(snap.session!), `Your organiser (ops) gave you 30 min more: the VM was rebooted. New deadline: ${time}.`);
    assert.equal(timeGivenTotal(snap.session!), '40 min given back in all.');
    const outage = buildViewModel({ session: source(status({ granted_s: 600, grants: [granted.grants![0]!] })), countdown, nowMs: NOW });
    assert.match(timeGivenNotice(outage.session!)!, /^Your organiser \(ops\) gave you 10 min back for an infrastructure outage: network outage\. New deadline/);
    assert.equal(timeGivenTotal(outage.session!), null, 'one grant: the notice says it all');
  });

  it("puts the chart's deadline at the working time with extensions, and not later for an infrastructure pause", () => {
    const extend = { kind: 'extend' as const, seconds: 1800, from: null, to: null, reason: 'reboot', by: 'ops', at: '2027-03-01T11:50:00Z' };
    const pause = { ...extend, kind: 'infrastructure_pause' as const, seconds: 600, from: '2027-03-01T10:30:00Z', to: '2027-03-01T10:40:00Z' };
    const limit = (grants: RunnerStatus['grants']) => buildViewModel({ session: source(status({ grants })), countdown, nowMs: NOW }).session?.timeLimitS;
    assert.equal(limit(undefined), 8 * 3600);
    assert.equal(limit([pause]), 8 * 3600);
    assert.equal(limit([pause, extend, extend]), 8 * 3600 + 3600);
  });

  it('says the reason once, however it ends, and leaves out the deadline where there is none', () => {
    const grant = { kind: 'extend' as const, seconds: 90, from: null, to: null, reason: ' power cut. ', by: 'root', at: '2027-03-01T11:50:00Z' };
    const snap = buildViewModel({ session: source(status({ deadline: null, granted_s: 90, grants: [grant] })), countdown, nowMs: NOW });
    assert.equal(timeGivenNotice(snap.session!), 'Your organiser (root) gave you 1.5 min more: power cut.');
  });
});
