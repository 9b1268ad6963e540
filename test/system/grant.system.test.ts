// Time given back on the record, over real SSH: on a protected set-up made by provision-protected.sh the
// participant's own sudo rule cannot extend their session (refused, and the attempt recorded), while the
// administrator's login can, through their own sudo or as root; the participant's status then shows the new
// deadline and why. On an unprotected VM the grant is made over the participant's login, and says what that
// means. It changes this machine as provisioning does, so the protected part runs only as root, claims the
// machine's protected set-up as the prepare tests do, and removes it afterwards.

import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { statusSchema, type RunnerStatus } from '../../src/core/runnerProtocol';
import type { SshTarget } from '../../src/core/ssh/sshTarget';
import { main } from '../../src/organiser/cli';
import { grantTime, type GrantOutcome } from '../../src/organiser/grant';
import type { HostSpec } from '../../src/organiser/hosts';
import { claimMachine, type PrepareMachine, PROTECTED_HOME } from '../support/prepareMachine';
import { participantConnection } from '../support/protectedSetup';
import { FIXTURE_ENVIRONMENTS, jsonLinesOf, REPO_ROOT } from '../support/runner';
import { loginUser, startSshd, TEST_USER, type Sshd } from '../support/sshd';
import { sessionProfile, startStudy, type Study } from '../support/study';

const SCRIPT = path.join(REPO_ROOT, 'environments', 'provision-protected.sh');
const EVENTS = path.join(PROTECTED_HOME, 'state', 'events.jsonl');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

describe('Giving time back on a protected VM: the administrator can, the participant cannot', function () {
  this.timeout(240_000);
  let machine: PrepareMachine | undefined;
  let sshd: Sshd;
  let participant: SshTarget;
  let user = '';
  let home = '';
  let spec: HostSpec;
  let started: RunnerStatus;

  const asParticipant = async (args: string) => participant.exec(`sudo -n /usr/local/bin/rebench-runner ${args}`);
  const participantStatus = async (): Promise<RunnerStatus> => {
    const r = await asParticipant('status --json');
    assert.equal(r.code, 0, r.stderr);
    return statusSchema.parse(JSON.parse(r.stdout));
  };
  const options = (admin: string) => ({ admin, identityFiles: [sshd.clientKeyPath], agent: false as const, knownHostsFiles: [] });

  before(async function () {
    if (!isRoot) {
      console.log('      skipped: it provisions the machine and must run as root');
      this.skip();
    }
    ({ user, home } = loginUser());
    const claimed = await claimMachine(TEST_USER, 'test/system/grant.system.test.ts');
    if (typeof claimed === 'string') {
      console.log(`      skipped: ${claimed}`);
      this.skip();
    }
    machine = claimed;
    const r = spawnSync(
      'bash',
      [SCRIPT, '--environment', path.join(FIXTURE_ENVIRONMENTS, 'protected-demo'), '--participant', user, '--scoring-user', machine.scorer],
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    sshd = await startSshd();
    participant = await participantConnection(sshd);
    const start = await asParticipant('start --json');
    assert.equal(start.code, 0, start.stdout + start.stderr);
    started = statusSchema.parse(JSON.parse(start.stdout));
    spec = {
      participant: 'ann',
      host: sshd.host,
      port: sshd.port,
      user,
      fingerprint: sshd.hostFingerprint,
      protectedMode: true,
      environment: 'protected-demo',
      source: 'ann.json',
    };
  });

  after(async () => {
    participant?.dispose();
    await sshd?.stop();
    if (machine) {
      const problems = machine.release(home);
      assert.deepEqual(problems, []);
    }
  });

  it('refuses the participant who tries to extend their own session through their sudo rule, and records the attempt', async () => {
    for (const args of [
      'extend --minutes 60 --reason "I need more time" --json',
      `infrastructure-pause --from ${started.started_at} --to ${started.now} --reason "my wifi" --json`,
    ]) {
      const r = await asParticipant(args);
      assert.equal(r.code, 4, `${args}: ${r.stdout}${r.stderr}`);
      const error = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'refused');
      assert.match(error.message, new RegExp(`Only an administrator can give time back; ${user} runs the runner through the participant's sudo rule`));
    }
    const refused = jsonLinesOf(EVENTS).filter((e) => e.event === 'refused' && e.caller === user);
    assert.deepEqual(
      refused.map((e) => e.action),
      ['extend', 'infrastructure-pause'],
    );
    assert.equal(refused[0]!.requested_reason, 'I need more time');
    // The channel the extension talks through, under the same sudo rule, takes no grant at all.
    const request = JSON.stringify({ id: 1, command: 'extend', args: { minutes: 60, reason: 'I need more time' } });
    const viaChannel = await asParticipant(`serve <<'EOF'\n${request}\nEOF`);
    const reply = viaChannel.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id?: number; exit_code?: number; error?: { code: string; message: string } })
      .find((m) => m.id === 1);
    assert.equal(reply?.error?.code, 'usage', viaChannel.stdout + viaChannel.stderr);
    assert.match(reply?.error?.message ?? '', /Unknown command "extend"/);
    const status = await participantStatus();
    assert.equal(status.granted_s, 0);
    assert.equal(status.deadline, started.deadline);
  });

  it("grants time over the administrator's own sudo, recorded with who and why; the participant sees the new deadline and the reason", async () => {
    const before = await participantStatus();
    const g: GrantOutcome = await grantTime(spec, { kind: 'extend', minutes: 30, reason: 'The VM was rebooted by the provider' }, options(machine!.admin));
    assert.equal(g.label, `${machine!.admin}@127.0.0.1:${sshd.port}`);
    assert.equal(g.mode, 'protected');
    assert.equal(g.note, undefined);
    assert.deepEqual([g.grant.kind, g.grant.seconds, g.grant.by, g.grant.reason], ['extend', 1800, machine!.admin, 'The VM was rebooted by the provider']);
    assert.equal(Date.parse(g.status.deadline!) - Date.parse(before.deadline!), 1800_000);
    const seen = await participantStatus();
    assert.equal(seen.deadline, g.status.deadline);
    assert.equal(seen.granted_s, 1800);
    assert.equal(seen.grants?.[0]?.reason, 'The VM was rebooted by the provider');
    const granted = jsonLinesOf(EVENTS).filter((e) => e.event === 'time_granted');
    assert.equal(granted.length, 1);
    assert.deepEqual(
      [granted[0]!.by, granted[0]!.kind, granted[0]!.mode, granted[0]!.deadline_after],
      [machine!.admin, 'extend', 'protected', g.status.deadline],
    );
  });

  it('records an infrastructure pause as root, counting the stretch as paused time', async () => {
    const before = await participantStatus();
    // The session started moments ago: the outage is the time since.
    const from = new Date(Date.parse(started.started_at!) + 100).toISOString();
    const to = before.now;
    const g = await grantTime(spec, { kind: 'infrastructure-pause', from, to, reason: 'network outage at the provider' }, options('root'));
    assert.equal(g.grant.by, 'root');
    assert.equal(g.grant.kind, 'infrastructure_pause');
    const stretch = (Date.parse(to) - Date.parse(from)) / 1000;
    assert.ok(Math.abs(g.grant.seconds - stretch) < 0.01, `${g.grant.seconds} vs ${stretch}`);
    assert.ok(Math.abs((Date.parse(g.status.deadline!) - Date.parse(before.deadline!)) / 1000 - stretch) < 0.01);
    assert.ok(Math.abs((g.status.granted_s ?? 0) - (1800 + stretch)) < 0.01);
    assert.ok(g.status.paused_s >= stretch - 0.01);
  });

  it("refuses a grant over the participant's login from the organiser tool before anything is run", async () => {
    await assert.rejects(
      grantTime(spec, { kind: 'extend', minutes: 5, reason: 'x' }, { identityFiles: [sshd.clientKeyPath], agent: false, knownHostsFiles: [] }),
      /--admin USER/,
    );
    await assert.rejects(grantTime(spec, { kind: 'extend', minutes: 5, reason: 'x' }, options(user)), /is not an administrator login/);
  });
});

describe('Giving time back on an unprotected VM', function () {
  this.timeout(120_000);
  let study: Study;

  before(async function () {
    if (!isRoot) {
      console.log('      skipped: it hands a runner home to a login user and must run as root');
      this.skip();
    }
    study = await startStudy({ hosts: 1, servers: 1, plan: () => ({ state: 'running', scores: ['3'] }) });
  });
  after(async () => study?.stop());

  it("grants over the participant's own login, records it, and says that this proves nothing about who it was", async () => {
    const spec = study.specs[0]!;
    const g = await grantTime(spec, { kind: 'extend', minutes: 15, reason: 'power cut' }, { agent: false, knownHostsFiles: [] });
    assert.equal(g.mode, 'unprotected');
    assert.match(g.note ?? '', /Unprotected mode: the participant owns this runner home and could grant time the same way/);
    assert.deepEqual([g.grant.seconds, g.grant.by, g.grant.reason], [900, spec.user, 'power cut']);
    const granted = jsonLinesOf(path.join(study.hosts[0]!.home, 'state', 'events.jsonl')).filter((e) => e.event === 'time_granted');
    assert.equal(granted.length, 1);
    assert.equal(granted[0]!.mode, 'unprotected');
  });

  it('rebench-organiser extend and infrastructure-pause on the command line', async () => {
    const profile = path.join(study.root, 'p0.json');
    fs.writeFileSync(profile, JSON.stringify(sessionProfile(study.specs[0]!, 'ann')));
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    assert.equal(await main(['extend', profile, '--minutes', '10', '--reason', 'scorer GPU down', '--no-agent', '--json'], io), 0, err.join('\n'));
    const status = statusSchema.parse(JSON.parse(out.join('\n')));
    assert.equal(status.granted_s, 25 * 60);
    assert.match(err[0]!, /^ann \(.*\): granted 10 min more\. Deadline now \S+Z \(running\); 25 min given back in all\. Recorded by \S+: scorer GPU down$/);
    assert.match(err[1]!, /^Note: Unprotected mode/);
    // The session started moments ago: the outage is the time since.
    const from = new Date(Date.parse(status.started_at!) + 100).toISOString();
    const to = status.now;
    out.length = 0;
    assert.equal(await main(['infrastructure-pause', profile, '--from', from, '--to', to, '--reason', 'network', '--no-agent'], io), 0, err.join('\n'));
    assert.match(out[0]!, /granted [\d.]+ min for the infrastructure pause/);
    const refused = await main(['infrastructure-pause', profile, '--from', from, '--to', to, '--reason', 'again', '--no-agent'], io);
    assert.equal(refused, 1);
    assert.match(err.at(-1)!, /^infrastructure-pause: not granted: .*already paused for the whole/);
  });
});
