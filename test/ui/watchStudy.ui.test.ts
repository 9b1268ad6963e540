// RE-Bench Organiser: Watch Study in a real VS Code (code-server in headless Chromium): the organiser picks
// a folder of session profiles, the panel reads every VM over SSH (runner homes with real sessions behind
// private sshd instances on loopback), shows one row per VM with its state, scores and flags, and lists
// what needs an organiser. A hostile participant name shows literally. The screenshot is kept.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { startStudy, type HostPlan, type Study } from '../support/study';
import {
  answerFileDialog,
  openWorkbench,
  runCommandAndPick,
  screenshot,
  startCodeServerWithVsix,
  stopAll,
  webviewFrame,
  writeProfile,
  type WorkbenchServer,
} from './harness';

const HOSTILE_NAME = 'Mallory <img src=x onerror="window.__pwned=1">';

function plan(i: number): HostPlan {
  return [
    { state: 'running', scores: ['2', '7.5', '4'] },
    { state: 'running', scores: ['1', 'nan', 'nan', 'nan'] },
    { state: 'paused', scores: ['5'] },
    { state: 'ended', scores: ['6', '9'] },
    { state: 'not_started' },
  ][i] as HostPlan;
}

describe('Watch Study in a real VS Code', function () {
  this.timeout(240_000);
  let study: Study;
  let ws: WorkbenchServer;
  let page: Page;
  let panel: Frame;
  // A folder of its own in a folder of its own: the web file dialog lists the parent while the path is typed.
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-ui-watch-'));
  const profiles = path.join(parent, 'profiles');

  before(async () => {
    study = await startStudy({ hosts: 5, servers: 2, plan });
    for (const h of study.hosts) {
      const s = h.spec;
      writeProfile(
        profiles,
        {
          name: h.index === 0 ? HOSTILE_NAME : s.participant,
          host: s.host,
          port: s.port,
          user: s.user,
          host_key_fingerprint: s.fingerprint,
          environment: s.environment,
          protected: false,
          identity_file: s.identityFile,
          runner_command: s.runnerCommand,
        },
        `${s.participant}.json`,
      );
    }
    ws = await startCodeServerWithVsix(undefined, { theme: 'Default Dark Modern' });
    page = await openWorkbench(ws.url, { width: 1500, height: 800 });
  });
  after(async () => {
    await stopAll();
    await study?.stop();
    fs.rmSync(parent, { recursive: true, force: true });
  });

  it('opens the panel on a folder of profiles and shows every VM, its scores and what needs an organiser', async () => {
    await runCommandAndPick(page, 'RE-Bench Organiser: Watch Study…', 'A folder of session profiles');
    await answerFileDialog(page, profiles);
    panel = await webviewFrame(page, 'Watch Study', 60_000);
    await panel.locator('p.summary', { hasText: /5 hosts: 2 running, 1 paused, 1 not started, 1 ended/ }).waitFor({ state: 'visible', timeout: 90_000 });
    const rows = panel.locator('tbody tr');
    assert.equal(await rows.count(), 5);
    const first = (await rows.nth(0).locator('td').allInnerTexts()).map((t) => t.trim());
    assert.equal(first[0], HOSTILE_NAME, 'the hostile name shows literally');
    assert.deepEqual(first.slice(1, 3), ['slow-scorer', 'running']);
    assert.match(first[3]!, /^\d:\d\d:\d\d$/);
    assert.deepEqual(first.slice(4, 9), ['3', '4 (0.4)', '7.5 (0.75)', '-', 'intact']);
    assert.equal((await rows.nth(1).locator('td.col-flags').innerText()).trim(), 'FAILING');
    assert.match(await panel.locator('section.flags').innerText(), /FAILING participant-001 .*The last 3 scoring runs gave no score/);
    assert.equal(await panel.locator('img').count(), 0, 'nothing of the hostile name became an element');
    assert.equal(await panel.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    await page.waitForTimeout(500);
    const shot = await screenshot(page, 'watch-study');
    assert.ok(fs.statSync(shot).size > 10_000, 'the screenshot was written');
  });
});
