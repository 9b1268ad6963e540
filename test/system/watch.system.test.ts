// Watching a study: a dozen runner homes with real sessions behind three private sshd instances on
// loopback, read by the live view as collect reads them. Checked: one row per VM with what its runner
// reports, the flags that need an organiser and the flags file, that reading changes nothing on a VM,
// a server that goes away (its hosts keep their last values and are flagged), and the refresh loop.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/organiser/cli';
import { StudyWatch } from '../../src/organiser/watch';
import type { StudySnapshot, WatchRow } from '../../src/organiser/watchModel';
import { runWatch, WATCH_EXIT } from '../../src/organiser/watchCommand';
import { plainLines } from '../../src/organiser/watchRender';
import { sessionProfile, startStudy, type HostPlan, type Study } from '../support/study';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** What each host's session is made of. */
function plan(i: number): HostPlan {
  switch (i) {
    case 0:
      return { state: 'running', scores: ['2', '7.5', '4'] };
    case 1:
      return { state: 'running', scores: ['3', 'nan', 'nan', 'nan'] };
    case 2:
      return { state: 'paused', scores: ['5'] };
    case 3:
      return { state: 'ended', scores: ['6', '9'] };
    case 4:
      return { state: 'running', scores: ['1', '2'], tamper: true };
    case 5:
    case 6:
      return { state: 'not_started' };
    default:
      return { state: 'running', scores: i % 2 ? ['1'] : [] };
  }
}

describe('Watching a study of many VMs over SSH', function () {
  this.timeout(240_000);
  let study: Study;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-watch-'));
  const flagsFile = path.join(scratch, 'flags.json');
  let first: StudySnapshot;
  let watch: StudyWatch;
  const row = (snapshot: StudySnapshot, i: number): WatchRow => snapshot.rows[i]!;

  before(async function () {
    if (!isRoot) {
      console.log('      skipped: it hands runner homes to a login user and must run as root');
      this.skip();
    }
    study = await startStudy({ hosts: 12, servers: 3, plan });
  });

  after(async () => {
    await study?.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('reads every host once: state, time left, runs, scores raw and normalised, integrity, clock offset, contact', async () => {
    const before = study.hosts.map((h) => study.digest(h.index));
    const finished: number[] = [];
    watch = new StudyWatch(study.specs, {
      concurrency: 5,
      agent: false,
      flagsFile,
      // The study started two hours ago: sessions not started yet are overdue.
      limits: { studyStartMs: Date.now() - 2 * 3600_000, unreachableAfterS: 0 },
      onProgress: (n) => finished.push(n),
    });
    first = await watch.refresh();
    assert.deepEqual(
      finished,
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    for (const r of first.rows) assert.equal(r.error, null, `${r.participant}: ${r.error}`);
    assert.deepEqual(
      first.rows.map((r) => r.state),
      ['running', 'running', 'paused', 'ended', 'running', 'not_started', 'not_started', 'running', 'running', 'running', 'running', 'running'],
    );

    const ann = row(first, 0);
    assert.equal(ann.participant, 'participant-000');
    assert.equal(ann.environment, 'slow-scorer');
    assert.equal(ann.runs, 3);
    // slow-scorer: starting 0, reference 10, higher is better.
    assert.deepEqual([ann.last?.score, ann.last?.normalised, ann.best?.score, ann.best?.normalised], [4, 0.4, 7.5, 0.75]);
    assert.equal(ann.integrity, 'intact');
    assert.ok(ann.secondsLeft !== null && ann.secondsLeft > 8 * 3600 - 600 && ann.secondsLeft <= 8 * 3600, `time left ${ann.secondsLeft}`);
    // The same machine: the offset is the measurement's error only.
    assert.ok(ann.clockOffsetMs !== null && Math.abs(ann.clockOffsetMs) < 2000, `offset ${ann.clockOffsetMs}`);
    assert.ok(ann.lastContact !== null && Math.abs(Date.parse(ann.lastContact) - Date.now()) < 60_000);
    assert.equal(row(first, 1).failedInARow, 3);
    assert.ok(row(first, 2).secondsLeft !== null, 'a paused session still has its time left');
    assert.equal(row(first, 3).best?.score, 9);
    assert.equal(row(first, 4).integrity, 'broken');
    assert.match(row(first, 4).integrityDetail ?? '', /\S/);

    // Read-only: no runner home changed by being read.
    assert.deepEqual(
      study.hosts.map((h) => study.digest(h.index)),
      before,
    );
  });

  it('flags what needs an organiser, and writes the same flags to the file', () => {
    const flags = first.flags.map((f) => `${f.code}:${f.participant}`).sort();
    assert.deepEqual(flags, ['failed-runs:participant-001', 'log-not-intact:participant-004', 'not-started:participant-005', 'not-started:participant-006']);
    const file = JSON.parse(fs.readFileSync(flagsFile, 'utf8')) as {
      format: string;
      refresh: number;
      flags: Array<{ code: string; participant: string; host: string; message: string }>;
    };
    assert.equal(file.format, 'rebench-watch-flags-1');
    assert.equal(file.refresh, 1);
    assert.deepEqual(file.flags.map((f) => `${f.code}:${f.participant}`).sort(), flags);
    const broken = file.flags.find((f) => f.code === 'log-not-intact')!;
    assert.equal(broken.host, `${study.hosts[4]!.spec.user}@127.0.0.1:${study.hosts[4]!.sshd.port}`);
    const lines = plainLines(first);
    assert.equal(lines.length, 1 + 12 + 4);
    assert.match(lines[0]!, /refresh 1 .*12 hosts, 8 running, 1 paused, 2 not started, 1 ended, 4 flags$/);
  });

  it('keeps the last values of hosts whose server went away, and flags them as not reached', async () => {
    const gone = study.sshds[1]!;
    await gone.stop();
    const second = await watch.refresh();
    const away = study.hosts.filter((h) => h.sshd === gone).map((h) => h.index);
    assert.equal(away.length, 4);
    for (const i of away) {
      const r = row(second, i);
      assert.ok(r.error, `${r.participant} should have failed`);
      assert.equal(r.state, row(first, i).state, 'the last known state is kept');
      assert.equal(r.runs, row(first, i).runs);
      assert.equal(r.lastContact, row(first, i).lastContact);
    }
    for (const i of study.hosts.map((h) => h.index).filter((i) => !away.includes(i))) assert.equal(row(second, i).error, null);
    const unreachable = second.flags
      .filter((f) => f.code === 'unreachable')
      .map((f) => f.participant)
      .sort();
    assert.deepEqual(unreachable, away.map((i) => study.specs[i]!.participant).sort());
    // A flag that stays up keeps the time it was first raised.
    const notStarted = second.flags.find((f) => f.code === 'not-started' && f.participant === 'participant-005');
    assert.equal(notStarted?.since, first.flags.find((f) => f.code === 'not-started' && f.participant === 'participant-005')?.since);
    const file = JSON.parse(fs.readFileSync(flagsFile, 'utf8')) as { refresh: number; flags: unknown[] };
    assert.equal(file.refresh, 2);
    assert.equal(file.flags.length, second.flags.length);
  });

  it('runs in a terminal: the table on the alternate screen, redrawn in place, and the last refresh left in the scrollback', async () => {
    const reachable = study.hosts.filter((h) => h.sshd !== study.sshds[1]).map((h) => h.spec);
    const written: string[] = [];
    const out: string[] = [];
    const err: string[] = [];
    const code = await runWatch(
      reachable,
      { once: true, agent: false, limits: { studyStartMs: Date.now() - 2 * 3600_000 } },
      { out: (l) => out.push(l), err: (l) => err.push(l), tty: { write: (t) => written.push(t), columns: 150, rows: 30 } },
      new AbortController().signal,
    );
    assert.equal(code, WATCH_EXIT.flagged);
    const screen = written.join('');
    assert.ok(screen.startsWith('\x1b[?1049h'), 'enters the alternate screen');
    assert.ok(screen.endsWith('\x1b[?25h\x1b[?1049l'), 'gives the screen back');
    assert.match(screen, /\x1b\[HRE-Bench study: reading 8 hosts/);
    assert.match(screen, /participant-000 +slow-scorer +running +\d:\d\d:\d\d +3 +4 \(0\.4\) +7\.5 \(0\.75\)/);
    assert.equal(out.length, 1 + 8 + out.filter((l) => l.startsWith('  FLAG ')).length);
    assert.match(out[0]!, /refresh 1 .*8 hosts/);
    assert.deepEqual(err, []);
  });

  it('prints plain lines when not on a terminal, and exits 0 with --once when nothing is flagged', async () => {
    const healthy = [study.hosts[0]!.spec, study.hosts[8]!.spec];
    const out: string[] = [];
    const code = await runWatch(healthy, { once: true, agent: false }, { out: (l) => out.push(l), err: () => undefined }, new AbortController().signal);
    assert.equal(code, WATCH_EXIT.ok);
    assert.equal(out.length, 3);
    assert.match(
      out[1]!,
      /^ {2}participant-000: host=\S+ environment=slow-scorer state=running left=\d:\d\d:\d\d runs=3 last=4 last_norm=0\.4 best=7\.5 best_norm=0\.75 job=- log=intact clock_offset=[+-]\d+\.\ds contact=\S+$/,
    );
  });

  it('rebench-organiser watch --once over a folder of profiles: plain lines, the flags file, exit 3 for a flag', async () => {
    const profiles = path.join(scratch, 'profiles');
    fs.mkdirSync(profiles);
    // Hosts of servers still running: participant-005 has not started.
    for (const i of [0, 5]) {
      const s = study.hosts[i]!.spec;
      fs.writeFileSync(path.join(profiles, `${s.participant}.json`), JSON.stringify(sessionProfile(s)));
    }
    const out: string[] = [];
    const err: string[] = [];
    const file = path.join(scratch, 'cli-flags.json');
    const studyStart = new Date(Date.now() - 2 * 3600_000).toISOString();
    const args = ['watch', '--once', '--plain', '--no-agent', '--study-start', studyStart, '--flags', file, profiles];
    const code = await main(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
    assert.equal(code, 3, `${out.join('\n')}\n${err.join('\n')}`);
    assert.match(out[0]!, /refresh 1 .*2 hosts, 1 running, 0 paused, 1 not started/);
    assert.match(out[1]!, /^ {2}participant-000: .*runs=3 last=4/);
    assert.deepEqual(
      out.filter((l) => l.startsWith('  FLAG ')).map((l) => l.split(' ').slice(3, 5).join(' ')),
      ['not-started participant-005'],
    );
    const flags = JSON.parse(fs.readFileSync(file, 'utf8')) as { flags: Array<{ code: string }> };
    assert.deepEqual(
      flags.flags.map((f) => f.code),
      ['not-started'],
    );
    // The same an hour later than the study's start minus two: nothing flagged, exit 0.
    const later = await main(['watch', '--once', '--plain', '--no-agent', '--not-started-after', '180', '--study-start', studyStart, profiles], {
      out: () => undefined,
      err: () => undefined,
    });
    assert.equal(later, 0);
  });

  it('refreshes on its interval until stopped', async () => {
    const snapshots: StudySnapshot[] = [];
    const controller = new AbortController();
    const loop = new StudyWatch(study.specs.slice(0, 2), {
      intervalS: 1,
      agent: false,
      onSnapshot: (s) => {
        snapshots.push(s);
        if (snapshots.length === 3) controller.abort();
      },
    });
    await loop.run(controller.signal);
    assert.deepEqual(
      snapshots.map((s) => s.refresh),
      [1, 2, 3],
    );
    for (let i = 1; i < snapshots.length; i++) {
      const gap = Date.parse(snapshots[i]!.at) - snapshots[i]!.durationMs - (Date.parse(snapshots[i - 1]!.at) - snapshots[i - 1]!.durationMs);
      assert.ok(gap >= 950, `refreshes started ${gap} ms apart, not about a second`);
    }
  });
});
