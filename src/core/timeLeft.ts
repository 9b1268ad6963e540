// Time left and its colour, as every view shows them (the status bar, the session view, the history panel),
// from a snapshot's session and countdown thresholds. Shared by the host and the webview.
import { secondsLeft, urgency, type Urgency } from './clock';
import type { CountdownView, SessionView } from './webviewProtocol';

/** The countdown's colours when the settings say nothing (package.json declares the same defaults). */
export const DEFAULT_COUNTDOWN: CountdownView = { warningS: 30 * 60, criticalS: 5 * 60 };

/**
 * Seconds left at `nowMs`, as every view shows them: counted down from the VM's deadline (on this machine's
 * clock) while running, the value the VM reported otherwise; null before the session starts.
 */
export function secondsLeftNow(session: SessionView, nowMs: number): number | null {
  if (session.state === 'not_started') return null;
  if (session.state === 'running' && session.deadlineLocalMs !== null) return secondsLeft(session.deadlineLocalMs, nowMs);
  return session.secondsLeft === null ? null : Math.max(0, Math.ceil(session.secondsLeft));
}

/** How urgent the time left is, by the snapshot's thresholds: the status bar's colour and the view's tone. */
export function countdownUrgency(session: SessionView, countdown: CountdownView, nowMs: number): Urgency {
  if (session.state === 'ended') return 'over';
  const left = secondsLeftNow(session, nowMs);
  return left === null ? 'normal' : urgency(left, countdown.warningS, countdown.criticalS);
}

function minutes(seconds: number): string {
  return String(Math.round((seconds / 60) * 10) / 10);
}

/**
 * The notice for time the organiser gave back: who gave how much and why, and the new deadline; null when
 * none was given. The status bar shows it as a notification when a grant arrives and keeps it in its
 * tooltip; the session view shows it under the countdown.
 */
export function timeGivenNotice(session: SessionView): string | null {
  const t = session.timeGiven;
  if (!t) return null;
  const { kind, seconds, reason, by } = t.latest;
  const what = kind === 'extend' ? `${minutes(seconds)} min more` : `${minutes(seconds)} min back for an infrastructure outage`;
  const deadline = session.deadlineLocalMs === null ? '' : ` New deadline: ${new Date(session.deadlineLocalMs).toLocaleTimeString([], { hourCycle: 'h23' })}.`;
  return `Your organiser (${by}) gave you ${what}: ${reason.trim().replace(/[.\s]+$/, '')}.${deadline}`;
}

/** All the time given back, when there was more than one grant ("45 min given back in all."); else null. */
export function timeGivenTotal(session: SessionView): string | null {
  const t = session.timeGiven;
  return t && t.grants > 1 ? `${minutes(t.totalS)} min given back in all.` : null;
}
