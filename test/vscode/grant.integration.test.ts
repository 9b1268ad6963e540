// Time given back, inside a real VS Code over a private sshd: the organiser's "Extend…" and
// "Infrastructure Pause…" commands grant time through the real runner on the participant's VM (unprotected
// mode: over the participant's login, as the organiser tool does there), and the participant's extension,
// connected to the same VM, learns of each grant from the runner's session event: the countdown moves to
// the new deadline, a notification says who gave how much and why, and the status bar's tooltip keeps it.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { statusSchema, type RunnerStatus } from '../../src/core/runnerProtocol';
import { OrganiserCommands } from '../../src/ui/organiserConstants';
import { jsonLinesOf } from '../support/runner';
import { until } from '../support/wait';
import { closeParticipantVm, connectAndStart, participantVm, type ParticipantVm } from '../support/vscodeVm';

const events = (vm: ParticipantVm) => jsonLinesOf(path.join(vm.sshd.home, '.rebench', 'state', 'events.jsonl'));

describe("The organiser's Extend and Infrastructure Pause in a real VS Code, as the participant sees them", function () {
  this.timeout(120_000);
  let vm: ParticipantVm;
  let profile: string;
  let started: { deadline: string; startedAt: string };
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-grant-vscode-'));

  const session = () => vm.api.controller.snapshot().session!;
  const notices = () => vm.api.controller.statusBar.timeGivenShown;
  /** The status bar's tooltip as it reads (its Markdown without the escapes). */
  const tooltip = () => (vm.api.controller.statusBar.tooltipMarkdown ?? '').replace(/\\(.)/g, '$1');

  before(async () => {
    vm = await participantVm({ choice: { name: 'grant test VM' } });
    await connectAndStart(vm);
    started = { deadline: session().deadlineIso!, startedAt: session().startedIso! };
    // The participant's session profile, as the organiser handed it out.
    profile = path.join(scratch, 'ann.json');
    fs.writeFileSync(
      profile,
      JSON.stringify({
        name: 'ann',
        host: vm.sshd.host,
        port: vm.sshd.port,
        user: vm.sshd.user,
        host_key_fingerprint: vm.sshd.hostFingerprint,
        environment: 'slow-scorer',
        identity_file: vm.sshd.clientKeyPath,
        protected: false,
      }),
    );
  });

  after(async () => {
    await closeParticipantVm(vm);
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('Extend… moves the deadline on the record; the participant sees the new deadline and a notice with who and why', async () => {
    assert.equal(session().timeGiven, null);
    assert.deepEqual(notices(), []);
    const reason = 'the VM was rebooted by the provider';
    const granted = statusSchema.parse(await vscode.commands.executeCommand(OrganiserCommands.extend, { input: profile, minutes: 30, reason }));
    assert.equal(Date.parse(granted.deadline!) - Date.parse(started.deadline), 30 * 60_000);
    const recorded = events(vm).filter((e) => e.event === 'time_granted');
    assert.deepEqual(
      recorded.map((e) => [e.kind, e.by, e.reason, e.mode]),
      [['extend', vm.sshd.user, reason, 'unprotected']],
    );

    // The runner's session event reaches the participant's extension: no reconnect, no command.
    await until('the new deadline in the session view', () => session().deadlineIso === granted.deadline);
    assert.deepEqual(session().timeGiven, {
      totalS: 1800,
      grants: 1,
      latest: { kind: 'extend', seconds: 1800, reason, by: vm.sshd.user, at: granted.grants![0]!.at },
    });
    // The status bar has it once the session's refresh has finished (the log is read after the status).
    await until('the notification of the grant', () => notices().length > 0);
    assert.equal(notices().length, 1, 'one notification for the grant');
    const said = `Your organiser (${vm.sshd.user}) gave you 30 min more: ${reason}. New deadline: `;
    assert.ok(notices()[0]!.startsWith(said), notices()[0]);
    // The deadline on this machine's clock (the VM's, less the measured offset, which each refresh measures again).
    const times = [-1000, 0, 1000].map((d) => new Date(session().deadlineLocalMs! + d).toLocaleTimeString([], { hourCycle: 'h23' }));
    assert.ok(
      times.some((t) => notices()[0] === `${said}${t}.`),
      `${notices()[0]} names none of ${times.join(', ')}`,
    );
    assert.ok(tooltip().includes(`Time given back: 30 min in all. ${said}`), tooltip());
  });

  it('Infrastructure Pause… counts an outage as paused time; the participant is told, and the tooltip sums both grants', async () => {
    const before: RunnerStatus = (await vm.api.controller.current!.client.status()).status;
    // The session started moments ago: the outage is the time since.
    const from = new Date(Date.parse(started.startedAt) + 100).toISOString();
    const to = before.now;
    const granted = statusSchema.parse(
      await vscode.commands.executeCommand(OrganiserCommands.infrastructurePause, { input: profile, from, to, reason: 'network outage at the provider' }),
    );
    const stretch = (Date.parse(to) - Date.parse(from)) / 1000;
    assert.ok(Math.abs((Date.parse(granted.deadline!) - Date.parse(before.deadline!)) / 1000 - stretch) < 0.01, `${granted.deadline} vs ${before.deadline}`);

    await until('the second grant in the session view', () => session().timeGiven?.grants === 2 && session().deadlineIso === granted.deadline);
    assert.equal(session().timeGiven?.latest.kind, 'infrastructure_pause');
    await until('the notification of the second grant', () => notices().length > 1);
    assert.equal(notices().length, 2);
    assert.match(
      notices()[1]!,
      /^Your organiser \(\S+\) gave you [\d.]+ min back for an infrastructure outage: network outage at the provider\. New deadline: /,
    );
    const total = Math.round(((1800 + stretch) / 60) * 10) / 10;
    assert.ok(tooltip().includes(`Time given back: ${total} min in all. ${notices()[1]!.split(' New deadline')[0]}`), tooltip());
  });

  it('a grant the runner refuses fails the command, saying why, and the participant is told nothing', async () => {
    const from = new Date(Date.parse(started.startedAt) + 100).toISOString();
    const to = new Date(Date.parse(started.startedAt) + 200).toISOString();
    await assert.rejects(
      Promise.resolve(vscode.commands.executeCommand(OrganiserCommands.infrastructurePause, { input: profile, from, to, reason: 'again' })),
      /already paused/,
    );
    await vm.api.controller.current!.refresh();
    assert.equal(session().timeGiven?.grants, 2);
    assert.equal(notices().length, 2);
  });
});
