// The one status bar item: the countdown to the VM's deadline.
import * as vscode from 'vscode';
import { dueReminders, formatDuration } from '../core/clock';
import { formatNormalised, formatScore, normalise } from '../core/scores';
import { countdownUrgency, secondsLeftNow, timeGivenNotice } from '../core/timeLeft';
import type { Snapshot } from '../core/webviewProtocol';
import { Commands } from './constants';

export class CountdownStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private timer: NodeJS.Timeout | undefined;
  private snapshot: Snapshot | undefined;
  private remindersShown = new Set<number>();
  private timeUpShown = false;
  private deadlineKey: string | null = null;
  private grantsSeen: number | undefined;
  /** The notices of time given back shown so far, in order (for the extension's tests). */
  readonly timeGivenShown: string[] = [];

  constructor(
    /** Minutes before the deadline at which a notification reminds the participant (a setting). */
    private readonly reminderMinutes: () => number[],
    private readonly onTimeUp: () => void,
  ) {
    this.item = vscode.window.createStatusBarItem('rebench.countdown', vscode.StatusBarAlignment.Left, 100);
    this.item.name = 'RE-Bench Countdown';
    this.item.command = Commands.focusView;
  }

  update(snapshot: Snapshot | undefined): void {
    this.snapshot = snapshot;
    const session = snapshot?.session;
    if (!session) {
      this.stopTimer();
      this.item.hide();
      return;
    }
    // Time given back by the organiser: a notice with the reason and the new deadline, once per grant. The
    // grants seen when the session is first shown (after a reload) were announced before.
    const grants = session.timeGiven?.grants ?? 0;
    if (this.grantsSeen !== undefined && grants > this.grantsSeen) {
      const notice = timeGivenNotice(session);
      if (notice) {
        this.timeGivenShown.push(notice);
        void vscode.window.showInformationMessage(`RE-Bench: ${notice}`);
      }
    }
    this.grantsSeen = grants;
    // A new deadline (a new session, or one moved by a pause) re-arms the reminders.
    if (session.deadlineIso !== this.deadlineKey) {
      this.deadlineKey = session.deadlineIso;
      this.timeUpShown = false;
      // Reminders already due when a deadline is first seen were shown before a reload, or make no sense
      // (a 60-minute reminder for a one-hour session): only those still ahead are armed.
      const left = this.secondsLeft() ?? Infinity;
      this.remindersShown = new Set(this.reminderMinutes().filter((m) => m * 60 >= left - 1));
    }
    if (session.state === 'running' && session.deadlineLocalMs !== null) this.startTimer();
    else this.stopTimer();
    this.render();
    this.item.show();
  }

  /** The tooltip's Markdown, or undefined while the item is hidden (for the extension's tests). */
  get tooltipMarkdown(): string | undefined {
    return this.snapshot?.session && this.item.tooltip instanceof vscode.MarkdownString ? this.item.tooltip.value : undefined;
  }

  /** The item's text, or undefined while it is hidden. */
  get text(): string | undefined {
    return this.snapshot?.session ? this.item.text : undefined;
  }

  /** Seconds left as every view shows them now (src/core/viewModel.ts). */
  secondsLeft(now = Date.now()): number | null {
    const session = this.snapshot?.session;
    return session ? secondsLeftNow(session, now) : null;
  }

  private render(): void {
    const snapshot = this.snapshot;
    const session = snapshot?.session;
    if (!snapshot || !session) return;
    const now = Date.now();
    const left = this.secondsLeft(now);
    const reminderMinutes = this.reminderMinutes();
    let text: string;
    let spoken: string;
    switch (session.state) {
      case 'not_started':
        text = `$(watch) ${formatDuration(session.timeLimitS)} · not started`;
        spoken = `Session not started; ${formatDuration(session.timeLimitS)} once started`;
        break;
      case 'paused':
        text = `$(debug-pause) ${formatDuration(left ?? 0)} left · paused`;
        spoken = `Session paused with ${spokenDuration(left ?? 0)} left`;
        break;
      case 'ended':
        text = `$(watch) session ended`;
        spoken = 'Session ended';
        break;
      default:
        text = left !== null && left <= 0 ? `$(watch) time is up` : `$(watch) ${formatDuration(left ?? 0)} left`;
        spoken = left !== null && left <= 0 ? 'Time is up' : `${spokenDuration(left ?? 0)} left`;
    }
    // Not connected at all (a session left running elsewhere): the countdown is the VM's deadline as last
    // known, and says so; reconnecting shows only the icon (the link comes back by itself).
    const offline = snapshot.connection.kind === 'disconnected' || snapshot.connection.kind === 'failed' || snapshot.connection.kind === 'connecting';
    if (offline && session.state !== 'ended') {
      text += ' · not connected';
      spoken += ', not connected to the VM';
    }
    if (snapshot.connection.kind !== 'connected') text += ' $(debug-disconnect)';
    this.item.text = text;
    this.item.accessibilityInformation = { label: `RE-Bench: ${spoken}`, role: 'timer' };
    this.item.tooltip = this.tooltip(snapshot);

    const level = countdownUrgency(session, snapshot.countdown, now);
    this.item.backgroundColor =
      level === 'warning'
        ? new vscode.ThemeColor('statusBarItem.warningBackground')
        : level === 'critical' || level === 'over'
          ? new vscode.ThemeColor('statusBarItem.errorBackground')
          : undefined;

    if (session.state === 'running' && left !== null) {
      for (const minutes of dueReminders(left, reminderMinutes, this.remindersShown)) {
        for (const m of reminderMinutes) if (m >= minutes) this.remindersShown.add(m);
        void vscode.window.showWarningMessage(
          `RE-Bench: ${formatDuration(left)} left in your session (deadline ${new Date(session.deadlineLocalMs ?? 0).toLocaleTimeString([], { hourCycle: 'h23' })}).`,
        );
      }
      if (left <= 0 && !this.timeUpShown) {
        this.timeUpShown = true;
        this.onTimeUp();
        void vscode.window.showWarningMessage('RE-Bench: time is up. Scoring is closed; your score log is kept on the VM.', { modal: false });
      }
    }
  }

  private tooltip(snapshot: Snapshot): vscode.MarkdownString {
    const md = new vscode.MarkdownString(undefined, true);
    md.isTrusted = false;
    const session = snapshot.session!;
    const env = snapshot.environment;
    md.appendMarkdown(`**RE-Bench session**${env ? ` — ${escapeMd(env.title)}` : ''}\n\n`);
    if (session.deadlineIso && session.deadlineLocalMs !== null) {
      const local = new Date(session.deadlineLocalMs);
      md.appendMarkdown(`Deadline: ${escapeMd(local.toLocaleString())} (local)  \n`);
      md.appendMarkdown(`${escapeMd(new Date(session.deadlineIso).toISOString().replace('.000Z', 'Z'))} (UTC, the VM's clock)\n\n`);
    }
    const notice = timeGivenNotice(session);
    if (notice && session.timeGiven) {
      md.appendMarkdown(`Time given back: ${escapeMd(String(Math.round((session.timeGiven.totalS / 60) * 10) / 10))} min in all. ${escapeMd(notice)}\n\n`);
    }
    const counted = snapshot.entries.find((e) => e.index === snapshot.countedIndex);
    if (env?.visible === 'none') {
      md.appendMarkdown('Scores are hidden from you in this study\n\n');
    } else if (env && counted && counted.score !== null) {
      const yn = normalise(counted.score, env.startingScore, env.referenceScore);
      md.appendMarkdown(
        `${env.aggregation === 'best' ? 'Best' : 'Last'} score: ${formatScore(counted.score)} (normalised ${formatNormalised(yn)}), ${env.direction} is better\n\n`,
      );
    } else {
      md.appendMarkdown('No score yet\n\n');
    }
    md.appendMarkdown(escapeMd(snapshot.connection.detail));
    return md;
  }

  private startTimer(): void {
    // Aligned to the second so the display ticks with the wall clock.
    if (this.timer) return;
    const tick = () => {
      this.render();
      this.timer = setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
    };
    this.timer = setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.stopTimer();
    this.item.dispose();
  }
}

function spokenDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} hours ${m} minutes` : `${m} minutes ${Math.floor(seconds % 60)} seconds`;
}

function escapeMd(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!<>|]/g, '\\$&');
}
