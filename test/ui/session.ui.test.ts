// The participant's flow in a real VS Code (code-server) in headless Chromium, against a private OpenSSH
// server on loopback, done the way a participant does it: the activity bar, the command palette, the file
// dialog, notifications, the pre-flight dialog and the session view's own buttons. Run once in the dark
// and once in the light theme, with screenshots of each step (and of the high contrast theme) in
// .test-output/screenshots/.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { grantTime } from '../../src/organiser/grant';
import type { HostSpec } from '../../src/organiser/hosts';
import { startSshd, type Sshd } from '../support/sshd';
import {
  answerFileDialog,
  clickNotificationButton,
  freshUiLoginUser,
  modalDialog,
  notification,
  notificationTexts,
  openWorkbench,
  pickQuickPickItem,
  quickInput,
  reloadWindow,
  runCommand,
  runCommandAndPick,
  screenshot,
  sessionViewFrame,
  screenshotOf,
  startCodeServerWithVsix,
  statusBarEntry,
  stopAll,
  webviewFrame,
  writeProfile,
  type WorkbenchServer,
} from './harness';

/** The bundled demo environment: an 8-hour limit, and a scorer that prints progress for a few seconds. */
const ENVIRONMENT = { id: 'demo-fast-function', title: 'Make a slow function fast', timeLimitS: 8 * 3600 };
const SCORING_TIMEOUT_MS = 60_000;
/** What the organiser's profile adds: the study's rules, questions after the session, reasons to give up. */
const STUDY = {
  rules: ['AI assistants may not be used.', 'Internet search is allowed.'],
  questions: [
    { id: 'difficulty', text: 'How hard was the task?', type: 'scale', labels: ['very easy', 'very hard'] },
    { id: 'approach', text: 'Which approach helped most?', type: 'choice', choices: ['Profiling first', 'Reading the scorer', 'Trial and error'] },
    { id: 'comments', text: 'Anything else the organisers should know?', type: 'text' },
  ],
  reasons: ['Out of ideas', 'Ran out of energy'],
};

/** "7:59:52" → seconds. */
function parseClock(text: string): number {
  const m = /^(\d+):(\d{2}):(\d{2})$/.exec(text.trim());
  assert.ok(m, `not an H:MM:SS time: ${JSON.stringify(text)}`);
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
}

/** Checks a countdown reading against the deadline of a session started at `startedMs` (this machine's clock). */
function assertCountdown(text: string, startedMs: number, what: string): number {
  const left = parseClock(text);
  const elapsed = (Date.now() - startedMs) / 1000;
  const expected = ENVIRONMENT.timeLimitS - elapsed;
  // The start click and the VM's start differ by a round trip; the display ticks once a second.
  assert.ok(
    left <= expected + 3 && left >= expected - 3,
    `${what} shows ${text} (${left} s left), but ${elapsed.toFixed(1)} s after the start it should be about ${Math.round(expected)} s`,
  );
  return left;
}

/** "rgb(1, 2, 3)" / "rgba(1, 2, 3, 0.5)" → [r, g, b, a]; null for anything else ("none"). */
function parseColor(css: string): [number, number, number, number] | null {
  const m = /^rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)$/.exec(css.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])] : null;
}

/** WCAG contrast ratio of a (possibly translucent) colour drawn over an opaque background. */
function contrast(fg: [number, number, number, number], bg: [number, number, number, number]): number {
  const blended = [0, 1, 2].map((i) => fg[i]! * fg[3] + bg[i]! * (1 - fg[3]));
  const lum = (c: number[]) =>
    c
      .map((v) => v / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
      .reduce((acc, v, i) => acc + v * [0.2126, 0.7152, 0.0722][i]!, 0);
  const [a, b] = [lum(blended), lum(bg.slice(0, 3))].sort((x, y) => y - x) as [number, number];
  return (a + 0.05) / (b + 0.05);
}

/** Chart labels whose colour is too faint to read against the view's background (under 3:1). */
async function faintChartText(view: Frame): Promise<string[]> {
  // No named helpers inside: the test's compiler would wrap them in a function the page does not have.
  const samples = await view.evaluate(() =>
    Array.from(document.querySelectorAll('svg text')).map((t) => {
      let bg = 'rgba(0, 0, 0, 0)';
      for (let e: Element | null = t; e && /rgba\(.*, 0\)$|transparent/.test(bg); e = e.parentElement) bg = getComputedStyle(e).backgroundColor;
      if (/rgba\(.*, 0\)$|transparent/.test(bg)) bg = getComputedStyle(document.documentElement).getPropertyValue('--vscode-sideBar-background').trim();
      return { text: t.textContent ?? '', fill: getComputedStyle(t).fill, bg };
    }),
  );
  const faint: string[] = [];
  for (const s of samples) {
    const fg = parseColor(s.fill);
    const bg =
      parseColor(s.bg) ??
      (/^#[0-9a-f]{6}$/i.test(s.bg) ? ([1, 3, 5].map((i) => parseInt(s.bg.slice(i, i + 2), 16)).concat(1) as [number, number, number, number]) : null);
    if (!fg || !bg) {
      faint.push(`"${s.text}" (fill ${s.fill} on ${s.bg})`);
      continue;
    }
    const ratio = contrast(fg, bg);
    if (ratio < 3) faint.push(`"${s.text}" (fill ${s.fill} on ${s.bg}: ${ratio.toFixed(2)}:1)`);
  }
  return faint;
}

const THEMES = [
  { name: 'Default Dark Modern', slug: 'dark', themeType: 'vs-dark', alsoHighContrast: true },
  { name: 'Default Light Modern', slug: 'light', themeType: 'vs', alsoHighContrast: false },
] as const;

describe('The participant flow in a real VS Code, over SSH', function () {
  this.timeout(120_000);
  let sshd: Sshd;

  before(async () => {
    sshd = await startSshd();
  });
  after(async () => {
    await stopAll();
    await sshd?.stop();
  });

  for (const theme of THEMES) {
    describe(`${theme.name} theme`, function () {
      let ws: WorkbenchServer;
      let page: Page;
      let view: Frame;
      let profileDir: string;
      let login: { user: string; home: string };
      let startedMs = 0;
      let firstScore = '';
      const dialogs: string[] = [];
      const shot = (name: string) => screenshot(page, `session-${theme.slug}-${name}`);
      const shotView = (name: string) => screenshotOf(page.locator('.monaco-workbench .part.sidebar'), `session-${theme.slug}-${name}-view`);

      before(async () => {
        login = freshUiLoginUser();
        profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-ui-profile-'));
        ws = await startCodeServerWithVsix(undefined, { theme: theme.name });
        page = await openWorkbench(ws.url);
        page.on('dialog', (d) => {
          dialogs.push(`${d.type()}: ${d.message()}`);
          void d.dismiss().catch(() => {});
        });
      });
      after(async () => {
        await page
          ?.context()
          .close()
          .catch(() => {});
        await ws?.stop();
        fs.rmSync(profileDir, { recursive: true, force: true });
      });

      it('opens the RE-Bench container from the activity bar and shows the session view, not connected', async () => {
        const classes = (await page.locator('.monaco-workbench').getAttribute('class')) ?? '';
        assert.match(classes, new RegExp(`\\b${theme.themeType}\\b`), `the workbench is not in the ${theme.name} theme`);
        const icon = page.locator('.part.activitybar .action-item a[aria-label^="RE-Bench"], .part.activitybar .action-item[aria-label^="RE-Bench"]').first();
        await icon.waitFor({ state: 'visible', timeout: 30_000 });
        await icon.click();
        // Away from the icon, so its hover label does not cover the view in the screenshots.
        await page.mouse.move(800, 400);
        view = await sessionViewFrame(page);
        await view.locator('.connection-word', { hasText: 'Disconnected' }).waitFor({ state: 'visible', timeout: 15_000 });
        await view.locator('button', { hasText: /^Connect$/ }).waitFor({ state: 'visible' });
        await shot('1-not-connected');
        await shotView('1-not-connected');
        // Nothing shows as an empty framed box (a card whose contents are all hidden).
        const emptyCards = await view
          .locator('.card')
          .evaluateAll((cards) =>
            cards
              .filter((c) => (c as HTMLElement).offsetParent !== null && !Array.from(c.children).some((child) => (child as HTMLElement).offsetParent !== null))
              .map((c) => c.className),
          );
        assert.deepEqual(emptyCards, [], 'empty cards are shown in the disconnected view');
      });

      it('shows a failed Connect Now once, with no dialog, and removes an imported profile from the picker after a confirmation', async () => {
        const wrongKey = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
        for (const name of ['Wrong key VM', 'Old study VM']) {
          const file = writeProfile(
            profileDir,
            { name, host: sshd.host, port: sshd.port, user: login.user, host_key_fingerprint: wrongKey, environment: ENVIRONMENT.id },
            `${name.replace(/ /g, '-')}.json`,
          );
          await runCommand(page, 'RE-Bench: Import Session Profile…');
          await answerFileDialog(page, file);
          if (name === 'Wrong key VM') await clickNotificationButton(page, `RE-Bench: imported the session profile "${name}"`, 'Connect Now');
        }
        // The failure of that connection is shown once: one notification, and no "Command … resulted in an error".
        const failed = notification(page, /RE-Bench: .*host key/i);
        await failed.first().waitFor({ state: 'visible', timeout: 30_000 });
        await page.waitForTimeout(1_500);
        assert.equal(await failed.count(), 1, `notifications: ${JSON.stringify(await notificationTexts(page))}`);
        assert.equal(await modalDialog(page).count(), 0, 'a dialog also reports the failure');
        assert.deepEqual(
          (await notificationTexts(page)).filter((t) => /resulted in an error/.test(t)),
          [],
        );
        await page.keyboard.press('Escape');

        // The picker offers both imported profiles, each with a button that removes it.
        await view.locator('button', { hasText: /^Connect$/ }).click();
        const row = quickInput(page).locator('.monaco-list-row', { hasText: 'Old study VM' });
        await row.waitFor({ state: 'visible', timeout: 15_000 });
        await row.hover();
        await shot('1b-picker-remove-button');
        await row.locator('.action-label.codicon-trash, .codicon-trash').first().click();
        const dialog = modalDialog(page);
        await dialog.waitFor({ state: 'visible', timeout: 15_000 });
        assert.match(await dialog.innerText(), /Remove the session profile "Old study VM"\?[\s\S]*Nothing on the VM changes/);
        await shot('1b-remove-profile-dialog');
        await dialog.locator('.monaco-button', { hasText: /^Remove$/ }).click();
        // The picker comes back without it.
        await quickInput(page).locator('.monaco-list-row', { hasText: 'Wrong key VM' }).waitFor({ state: 'visible', timeout: 15_000 });
        assert.equal(await quickInput(page).locator('.monaco-list-row', { hasText: 'Old study VM' }).count(), 0, 'the removed profile is still offered');
        // Connecting from the view to the wrong key fails, and says so next to the button.
        await pickQuickPickItem(page, 'Wrong key VM');
        const error = view.locator('.connection .action-error');
        await error.waitFor({ state: 'visible', timeout: 30_000 });
        assert.match(await error.innerText(), /host key/i);
        await shotView('1c-connect-failed');
      });

      it("imports the organiser's session profile through the file dialog and connects with the pinned host key", async () => {
        const profile = writeProfile(profileDir, {
          name: `UI test VM (${theme.slug})`,
          host: sshd.host,
          port: sshd.port,
          user: login.user,
          host_key_fingerprint: sshd.hostFingerprint,
          environment: ENVIRONMENT.id,
          identity_file: sshd.clientKeyPath,
          rules: STUDY.rules,
          end_questions: STUDY.questions,
          give_up_reasons: STUDY.reasons,
        });
        await runCommand(page, 'RE-Bench: Import Session Profile…');
        await answerFileDialog(page, profile);
        await clickNotificationButton(page, `RE-Bench: imported the session profile "UI test VM (${theme.slug})"`, 'Connect Now');
        await view.locator('.connection-word', { hasText: /^Connected$/ }).waitFor({ state: 'visible', timeout: 30_000 });
        assert.equal((await view.locator('.connection-target').innerText()).trim(), `${login.user}@127.0.0.1:${sshd.port}`);
        // The error of the failed connection before is gone: the state it described is over.
        assert.equal(await view.locator('.connection .action-error').isVisible(), false, 'the old connection error stays under "Connected"');
        assert.equal((await view.locator('.environment-title > span').first().innerText()).trim(), ENVIRONMENT.title);
        assert.equal((await view.locator('.timer-label').textContent())?.trim(), 'Not started');
        assert.equal((await view.locator('.timer-value').innerText()).trim(), '8:00:00');
        await view.locator('button', { hasText: /^Start session$/ }).waitFor({ state: 'visible' });
        // The runner set the environment up on the VM, as the profile's user.
        assert.ok(fs.existsSync(path.join(login.home, 'rebench', ENVIRONMENT.id, 'solution.py')), 'the starting solution is on the VM');
        const status = statusBarEntry(page, 'RE-Bench:');
        await status.waitFor({ state: 'visible', timeout: 10_000 });
        assert.match(await status.innerText(), /8:00:00 · not started/);
        await shot('2-connected');
      });

      it('starts the clock from the pre-flight dialog', async () => {
        await runCommand(page, 'RE-Bench: Start Session…');
        const dialog = modalDialog(page);
        await dialog.waitFor({ state: 'visible', timeout: 30_000 });
        const text = await dialog.innerText();
        assert.match(text, new RegExp(`Start your 8:00:00 session on .*${login.user}@127\\.0\\.0\\.1`));
        assert.match(text, /Pre-flight check:/);
        assert.doesNotMatch(text, /✗/, 'a pre-flight check failed');
        assert.match(text, /✓ .*Host key matches the pinned fingerprint/s);
        assert.match(text, /Your best score counts \(lower is better\)/);
        // The study's rules, and that starting agrees to them.
        assert.match(
          text,
          new RegExp(
            `The study's rules:\\s*• ${STUDY.rules[0]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*• ${STUDY.rules[1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
          ),
        );
        assert.match(text, /Starting confirms that you agree to them; your confirmation is recorded on the VM with the time/);
        await shot('3-preflight-dialog');
        startedMs = Date.now();
        await dialog.locator('.monaco-button', { hasText: 'Agree to the Rules and Start' }).click();
        await dialog.waitFor({ state: 'hidden' });

        await view.locator('.timer-label', { hasText: 'Time left' }).waitFor({ state: 'visible', timeout: 30_000 });
        assertCountdown(await view.locator('.timer-value').innerText(), startedMs, 'the session view');
        // Eight hours on, the deadline may fall on another day, which then shows its date.
        assert.match(await view.locator('.timer-detail').innerText(), /^Deadline (\w{3}, \w{3} \d{1,2} )?\d\d:\d\d:\d\d your time · \d\d:\d\d:\d\d UTC$/);
        const status = statusBarEntry(page, 'RE-Bench:');
        await page.waitForFunction(() => /\d+:\d\d:\d\d left/.test(document.querySelector('.part.statusbar')?.textContent ?? ''), undefined, {
          timeout: 10_000,
        });
        const statusText = (await status.innerText()).trim();
        const m = /(\d+:\d\d:\d\d) left/.exec(statusText);
        assert.ok(m, `status bar shows ${JSON.stringify(statusText)}`);
        assertCountdown(m[1]!, startedMs, 'the status bar');
        // Its accessible name says the same in words (still "8 hours 0 minutes" in the first second).
        assert.match((await status.getAttribute('aria-label')) ?? '', /^RE-Bench: (7 hours 59|8 hours 0) minutes left$/);
        await shot('4-started');
      });

      it('opens the instructions when the clock starts', async () => {
        const tab = page.locator('.tabs-container .tab', { hasText: `Instructions: ${ENVIRONMENT.title}` });
        try {
          await tab.waitFor({ state: 'visible', timeout: 10_000 });
        } catch {
          const tabs = await page.locator('.tabs-container .tab').allInnerTexts();
          assert.fail(`No "Instructions: ${ENVIRONMENT.title}" editor tab after the start. Tabs open: ${JSON.stringify(tabs)}`);
        }
        const instructions = await webviewFrame(page, 'Instructions');
        await instructions.locator('h1', { hasText: ENVIRONMENT.title }).waitFor({ state: 'visible', timeout: 10_000 });
        // Math is typeset, not left as TeX source.
        assert.ok((await instructions.locator('.katex').count()) > 0, 'the instructions show no typeset math');
        await shot('4-instructions');
      });

      it('scores from the session view: live output, then the new row and its announcement', async () => {
        const scoreButton = view.locator('.score-now button', { hasText: /^Score now$/ });
        await scoreButton.waitFor({ state: 'visible' });
        assert.equal(await scoreButton.getAttribute('aria-disabled'), null, 'Score now is disabled');
        await scoreButton.click();
        // Live output: the scorer's first lines show while the job is still running.
        await view.locator('.job-line', { hasText: /Scoring job .* running for/ }).waitFor({ state: 'visible', timeout: 15_000 });
        await view.locator('pre.job-output', { hasText: 'Checking correctness on' }).waitFor({ state: 'visible', timeout: SCORING_TIMEOUT_MS });
        assert.ok(await view.locator('.job-line', { hasText: 'running for' }).isVisible(), 'the output came after the job had finished, not live');
        await shot('5-scoring');
        await shotView('5-scoring');

        const row = view.locator('table.runs tbody tr.run').first();
        await row.waitFor({ state: 'visible', timeout: SCORING_TIMEOUT_MS });
        assert.equal(await view.locator('table.runs tbody tr.run').count(), 1);
        firstScore = (await row.locator('td.score').innerText()).trim();
        assert.match(firstScore, /^-?\d+(\.\d+)?$/, `the history row shows ${JSON.stringify(firstScore)} as the score`);
        assert.equal((await row.locator('th').innerText()).trim(), '1');
        assert.match(await row.locator('td.status').innerText(), /counts/);
        assert.match(await view.locator('.message-row').first().innerText(), /^Correct\. Median time/);
        // The output of the finished job stays at hand.
        await view.locator('.job-line', { hasText: /Last scoring job .* finished/ }).waitFor({ state: 'visible', timeout: 10_000 });
        assert.match((await view.locator('pre.job-output').textContent()) ?? '', /Timed run 3 of 3/);
        // A screen reader hears the new score once, through the polite live region.
        const announcer = view.locator('[role="status"][aria-live="polite"]');
        await view.waitForFunction(
          () => /New score/.test(document.querySelector('[role="status"][aria-live="polite"].visually-hidden')?.textContent ?? ''),
          undefined,
          { timeout: 5_000 },
        );
        const announced = (await announcer.last().textContent()) ?? '';
        assert.match(announced, new RegExp(`^New score ${firstScore.replace('.', '\\.')} \\(normalised -?\\d+(\\.\\d+)?\\)\\. Best so far\\.$`));
        assert.equal((await view.locator('.score-big').innerText()).trim(), firstScore);
        await shot('6-scored');
        await shotView('6-scored');
        // The chart and the table are below the fold of a 800 px high window.
        await view.locator('section.history-table').scrollIntoViewIfNeeded();
        await shotView('6-scored-history');
      });

      it('restores the scored solution from the history table, after a dialog that says what it overwrites', async () => {
        const restore = view.locator('table.runs tbody .kept button', { hasText: 'Restore' }).first();
        await restore.waitFor({ state: 'visible', timeout: 10_000 });
        assert.equal(await restore.getAttribute('aria-label'), 'Restore the solution of this run (run 1)');
        await view.locator('section.history-table').scrollIntoViewIfNeeded();
        await shotView('8-kept-solutions');
        // The narrow table fits the sidebar: nothing is cut off at the right, Changes and Restore included.
        const fit = await view.locator('section.history-table').evaluate((section) => {
          const wrap = section.querySelector('.table-wrap') as HTMLElement;
          const right = document.documentElement.clientWidth;
          const cut = Array.from(section.querySelectorAll('th, td, button'))
            .filter((e) => e.getBoundingClientRect().right > right + 0.5)
            .map((e) => `${e.tagName} ${(e.textContent ?? '').trim().slice(0, 20)}`);
          return { overflow: wrap.scrollWidth - wrap.clientWidth, cut };
        });
        assert.deepEqual(fit, { overflow: 0, cut: [] }, 'the history table is wider than the session view');
        await restore.click();
        const dialog = modalDialog(page);
        await dialog.waitFor({ state: 'visible', timeout: 30_000 });
        const text = await dialog.innerText();
        assert.match(text, /Restore the solution of run 1 \(/);
        assert.match(text, /Your current files are kept first, so the restore can be undone/);
        await shot('8-restore-dialog');
        await dialog.locator('.monaco-button', { hasText: /^Restore$/ }).click();
        await notification(page, /RE-Bench: restored the solution of run 1/)
          .first()
          .waitFor({ state: 'visible', timeout: 30_000 });
        await shot('8-restored');
      });

      it('adds a note from the session view', async () => {
        const add = view.locator('.actions button', { hasText: /^Add note$/ });
        await add.waitFor({ state: 'visible', timeout: 10_000 });
        await add.click();
        const input = quickInput(page);
        await input.waitFor({ state: 'visible', timeout: 15_000 });
        await page.keyboard.type('Tried **memoisation**: no faster');
        await shot('9-add-note');
        await page.keyboard.press('Enter');
        await notification(page, /RE-Bench: note recorded at \d+:\d\d:\d\d of the session/)
          .first()
          .waitFor({ state: 'visible', timeout: 30_000 });
        await shot('9-note-recorded');
      });

      it('asks before connecting to another VM while the session runs; when that fails, the countdown stays, marked not connected', async () => {
        await runCommandAndPick(page, 'RE-Bench: Connect to a VM…', 'Wrong key VM');
        const dialog = modalDialog(page);
        await dialog.waitFor({ state: 'visible', timeout: 15_000 });
        const text = await dialog.innerText();
        assert.match(
          text,
          new RegExp(`A session is running on "UI test VM \\(${theme.slug}\\)" \\(${login.user}@127\\.0\\.0\\.1:${sshd.port}\\) \\(\\d+:\\d\\d:\\d\\d left\\)`),
        );
        assert.match(text, /The session there goes on: its clock runs on the VM/);
        await shot('10-switch-dialog');
        await dialog.locator('.monaco-button', { hasText: 'Connect to Wrong key VM' }).click();
        await notification(page, /RE-Bench: .*host key/i)
          .first()
          .waitFor({ state: 'visible', timeout: 30_000 });
        // The failure is shown once: no "Command … resulted in an error" dialog on top of it.
        await page.waitForTimeout(1_000);
        assert.equal(await modalDialog(page).count(), 0, 'a dialog reports the failure a second time');
        await page.waitForFunction(() => /\d+:\d\d:\d\d left · not connected/.test(document.querySelector('.part.statusbar')?.textContent ?? ''), undefined, {
          timeout: 15_000,
        });
        const m = /(\d+:\d\d:\d\d) left · not connected/.exec(await statusBarEntry(page, 'RE-Bench:').innerText());
        assert.ok(m, 'the status bar shows no countdown');
        assertCountdown(m[1]!, startedMs, 'the status bar while not connected');
        await view.locator('.connection-word', { hasText: /^Disconnected$/ }).waitFor({ state: 'visible', timeout: 10_000 });
        assert.match(await view.locator('.connection-detail').innerText(), /Your session on .* goes on: its clock runs on the VM/);
        assertCountdown(await view.locator('.timer-value').innerText(), startedMs, 'the session view while not connected');
        await shot('10-switch-failed');
        await view.locator('section.connection').scrollIntoViewIfNeeded();
        await shotView('10-switch-failed');
        // Back to the session's VM: no question, it is the one left.
        await runCommandAndPick(page, 'RE-Bench: Connect to a VM…', `UI test VM (${theme.slug})`, { timeoutMs: 10_000 });
        await view.locator('.connection-word', { hasText: /^Connected$/ }).waitFor({ state: 'visible', timeout: 30_000 });
        await page.waitForFunction(() => !/not connected/.test(document.querySelector('.part.statusbar')?.textContent ?? ''), undefined, { timeout: 10_000 });
      });

      it('draws every chart label in a colour that can be read', async () => {
        await view.locator('.chart-area svg text').first().waitFor({ state: 'attached', timeout: 10_000 });
        assert.deepEqual(await faintChartText(view), [], 'chart labels too faint to read (contrast under 3:1)');
      });

      it('comes back after "Developer: Reload Window" with the running session, without connecting again', async () => {
        await reloadWindow(page);
        view = await sessionViewFrame(page);
        await view.locator('.connection-word', { hasText: /^Connected$/ }).waitFor({ state: 'visible', timeout: 30_000 });
        await view.locator('.timer-label', { hasText: 'Time left' }).waitFor({ state: 'visible', timeout: 15_000 });
        const before = assertCountdown(await view.locator('.timer-value').innerText(), startedMs, 'the session view after the reload');
        const row = view.locator('table.runs tbody tr.run').first();
        await row.waitFor({ state: 'visible', timeout: 15_000 });
        assert.equal((await row.locator('td.score').innerText()).trim(), firstScore);
        await page.waitForFunction(() => /\d+:\d\d:\d\d left/.test(document.querySelector('.part.statusbar')?.textContent ?? ''), undefined, {
          timeout: 15_000,
        });
        const m = /(\d+:\d\d:\d\d) left/.exec(await statusBarEntry(page, 'RE-Bench:').innerText());
        assert.ok(m, 'the status bar countdown is back');
        assertCountdown(m[1]!, startedMs, 'the status bar after the reload');
        // It keeps counting down.
        await page.waitForTimeout(2_100);
        const later = parseClock(await view.locator('.timer-value').innerText());
        assert.ok(later < before, `the countdown stands still after the reload (${before} s, then ${later} s)`);
        await shot('7-after-reload');
        await shotView('7-after-reload');
        // The instructions tab is back, with the instructions.
        await page.locator('.tabs-container .tab', { hasText: `Instructions: ${ENVIRONMENT.title}` }).click({ timeout: 15_000 });
        const instructions = await webviewFrame(page, 'Instructions');
        await instructions.locator('h1', { hasText: ENVIRONMENT.title }).waitFor({ state: 'visible', timeout: 15_000 });
        await shot('7-instructions-after-reload');
      });

      it('shows time the organiser gave back: a notification saying who gave how much and why, the new deadline and the notice under the countdown', async () => {
        const deadlineBefore = (await view.locator('.timer-detail').innerText()).trim();
        const reason = 'the VM was rebooted by the provider';
        // The organiser's grant over SSH, as "RE-Bench Organiser: Extend…" makes it (unprotected: the participant's login).
        const vm: HostSpec = {
          participant: 'ui',
          host: sshd.host,
          port: sshd.port,
          user: login.user,
          fingerprint: sshd.hostFingerprint,
          identityFile: sshd.clientKeyPath,
          protectedMode: false,
          source: 'ui test',
        };
        await grantTime(vm, { kind: 'extend', minutes: 30, reason }, { agent: false, knownHostsFiles: [] });
        const said = new RegExp(`^Your organiser \\(${login.user}\\) gave you 30 min more: ${reason}\\. New deadline: \\d\\d:\\d\\d:\\d\\d\\.$`);
        await notification(page, 'RE-Bench: Your organiser').first().waitFor({ state: 'visible', timeout: 30_000 });
        const notice = view.locator('.time-given');
        await notice.waitFor({ state: 'visible', timeout: 15_000 });
        assert.match((await notice.innerText()).trim(), said);
        assert.equal(await notice.getAttribute('role'), 'status', 'a screen reader reads it out when it arrives');
        assert.notEqual((await view.locator('.timer-detail').innerText()).trim(), deadlineBefore, 'the deadline under the countdown moved');
        assertCountdown(await view.locator('.timer-value').innerText(), startedMs + 30 * 60_000, 'the session view after 30 minutes were given');
        await shot('10-time-given');
        await shotView('10-time-given');
      });

      it("gives up from the session view with the organiser's reason, and answers the end questions in the form that opens", async () => {
        view = await sessionViewFrame(page);
        await view.locator('.actions button', { hasText: /^Give up$/ }).click();
        await pickQuickPickItem(page, 'Out of ideas');
        const input = quickInput(page).locator('.quick-input-box input');
        await input.waitFor({ state: 'visible', timeout: 15_000 });
        await page.keyboard.type('The memoised version was the best I found');
        await shot('11-give-up-reason');
        await page.keyboard.press('Enter');
        const dialog = modalDialog(page);
        await dialog.waitFor({ state: 'visible', timeout: 15_000 });
        assert.match(await dialog.innerText(), /Give up and end your session now\?/);
        await shot('11-give-up-dialog');
        await dialog.locator('.monaco-button', { hasText: 'Give Up and End Session' }).click();
        await view.locator('.timer-label', { hasText: /ended/i }).waitFor({ state: 'visible', timeout: 30_000 });
        assert.ok(fs.readFileSync(path.join(login.home, '.rebench', 'state', 'records.jsonl'), 'utf8').includes('"give_up"'), 'no give_up record on the VM');

        // The form opens in the editor.
        await page.locator('.tabs-container .tab', { hasText: 'RE-Bench: End Questions' }).waitFor({ state: 'visible', timeout: 15_000 });
        const form = await webviewFrame(page, 'End Questions');
        await form.locator('fieldset.question').first().waitFor({ state: 'visible', timeout: 15_000 });
        assert.deepEqual(
          (await form.locator('fieldset.question legend').allInnerTexts()).map((t) => t.trim()),
          STUDY.questions.map((q, i) => `${i + 1}. ${q.text}`),
        );
        await shot('12-questions-form');
        await form.locator('label.scale-option', { hasText: '4' }).click();
        await form.locator('label.option', { hasText: 'Profiling first' }).click();
        await form.locator('textarea[name="comments"]').fill('The scorer output was clear.');
        await shot('12-questions-filled');
        await form.locator('button', { hasText: /^Send answers$/ }).click();
        await form.locator('.form-status', { hasText: 'Thank you: your answers are recorded on the VM' }).waitFor({ state: 'visible', timeout: 30_000 });
        await shot('12-questions-sent');
        const answers = fs
          .readFileSync(path.join(login.home, '.rebench', 'state', 'records.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { kind: string; answers?: unknown })
          .find((r) => r.kind === 'answers');
        assert.deepEqual(answers?.answers, [
          { id: 'difficulty', value: 4 },
          { id: 'approach', value: 'Profiling first' },
          { id: 'comments', value: 'The scorer output was clear.' },
        ]);
        // Back to the session view for what follows.
        view = await sessionViewFrame(page);
      });

      it('opened no browser dialog (alert, confirm, prompt) on the way', () => {
        assert.deepEqual(dialogs, []);
      });

      if (theme.alsoHighContrast) {
        it('reads well in the high contrast theme', async () => {
          // The picker lists themes by label: "Default High Contrast" is "Dark High Contrast" there.
          await runCommandAndPick(page, 'Preferences: Color Theme', /^Dark High Contrast$/, { filter: 'high contrast' });
          await page.locator('.monaco-workbench.hc-black').waitFor({ state: 'attached', timeout: 15_000 });
          view = await sessionViewFrame(page);
          await view.locator('table.runs tbody tr.run').first().waitFor({ state: 'visible', timeout: 15_000 });
          // The view follows the theme: its text colour is the high contrast foreground (white). (The session
          // has ended by now, so the time is drawn muted; the environment's title is not.)
          const color = await view
            .locator('.environment-title > span')
            .first()
            .evaluate((e) => getComputedStyle(e).color);
          assert.equal(color, 'rgb(255, 255, 255)');
          await shot('8-high-contrast');
          await shotView('8-high-contrast');
          await view.locator('section.history-table').scrollIntoViewIfNeeded();
          await shotView('8-high-contrast-history');
          assert.deepEqual(await faintChartText(view), [], 'chart labels too faint to read in high contrast (contrast under 3:1)');
        });
      }
    });
  }
});
