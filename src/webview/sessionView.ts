// The session view's script (bundled to dist/media/sessionView.js). The host owns the state; this script
// paints the last snapshot it was sent, counts the time down, and turns clicks into requests.
// Protocol: post "ready", receive a full snapshot, then deltas; every message is validated on arrival.
import './zodConfig';
import * as z from '../core/zod';
import { bestSoFar } from '../core/chart';
import { formatScore, scoredButHidden } from '../core/scores';
import {
  errorContextKey,
  hostMessageSchema,
  JOB_OUTPUT_VIEW_LIMIT,
  snapshotSchema,
  type HostMessage,
  type Snapshot,
  type ViewAction,
  type ViewMessage,
} from '../core/webviewProtocol';
import {
  ActionsSection,
  ConnectionSection,
  EnvironmentSection,
  IntegritySection,
  JobSection,
  ScoreSection,
  TimerSection,
  type Layout,
  type Section,
  type ViewContext,
} from './controls';
import { h } from './dom';
import { ChartSection, normalisedText, ScoresSection, TableSection } from './history';
import { appendCapped } from '../core/jobOutput';

interface VsCodeApi {
  postMessage(message: ViewMessage): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const STATE_VERSION = 1;
const cachedStateSchema = z.object({ v: z.literal(STATE_VERSION), snapshot: snapshotSchema });

const vscode = acquireVsCodeApi();
const layout: Layout = document.body.dataset.layout === 'history' ? 'history' : 'view';

let snapshot: Snapshot | null = null;
const pending = new Map<number, ViewAction>();
const errors = new Map<ViewAction, string>();
/** The state each error was about (errorContextKey): when it is gone, so is the error. */
const errorContexts = new Map<ViewAction, string>();
let nextRequestId = 1;

function request(action: ViewAction, index?: number): void {
  if ([...pending.values()].includes(action)) return;
  const id = nextRequestId++;
  pending.set(id, action);
  errors.delete(action);
  errorContexts.delete(action);
  vscode.postMessage(index === undefined ? { type: 'request', id, action } : { type: 'request', id, action, index });
  render();
}

/** Drops the errors whose state has gone: a failed connect once connected, a failed start once started. */
function forgetStaleErrors(next: Snapshot): void {
  const key = errorContextKey(next);
  for (const [action, was] of errorContexts) {
    if (was === key) continue;
    errors.delete(action);
    errorContexts.delete(action);
  }
}

// --- layout ---------------------------------------------------------------------------------------

const integrity = new IntegritySection();
const connection = new ConnectionSection(request, layout === 'view');
const environment = new EnvironmentSection();
const timer = new TimerSection(request, layout === 'view');
const score = new ScoreSection(request, layout === 'history');
const job = new JobSection();
const scores = new ScoresSection();
const chart = new ChartSection(layout);
const table = new TableSection(layout, request);
const sections: Section[] = [integrity, connection, environment, timer, score, job, scores, chart, table];
const announcer = h('div', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
const loading = h('p', { class: 'muted loading' }, 'Loading the session…');

/** A card around other sections, shown only while there is a session to show. */
function sessionCard(...children: HTMLElement[]): HTMLElement {
  const card = h('div', { class: 'card' }, ...children);
  sections.push({ root: card, update: (ctx) => void (card.hidden = !ctx.snap.session) });
  return card;
}

const app = h('main', { class: `app layout-${layout}` });
if (layout === 'view') {
  const actions = new ActionsSection(request);
  sections.push(actions);
  app.append(
    connection.root,
    integrity.root,
    environment.root,
    sessionCard(timer.root, score.root),
    job.root,
    scores.root,
    chart.root,
    table.root,
    actions.root,
  );
} else {
  app.append(
    integrity.root,
    h('div', { class: 'history-header' }, environment.root, connection.root),
    h('div', { class: 'overview' }, sessionCard(timer.root, score.root), sessionCard(scores.root)),
    chart.root,
    job.root,
    table.root,
  );
}
document.body.replaceChildren(loading, app, announcer);
app.hidden = true;

function context(snap: Snapshot): ViewContext {
  return { snap, layout, nowMs: Date.now(), pending: new Set(pending.values()), errors };
}

function render(): void {
  if (!snapshot) return;
  loading.hidden = true;
  app.hidden = false;
  const ctx = context(snapshot);
  for (const section of sections) section.update(ctx);
}

// --- time -----------------------------------------------------------------------------------------

function tick(): void {
  if (snapshot) {
    const ctx = context(snapshot);
    for (const section of sections) section.tick?.(ctx);
  }
  // Tick just after each whole second of this machine's clock, so the display changes on time.
  setTimeout(tick, 1000 - (Date.now() % 1000) + 15);
}

// --- announcements --------------------------------------------------------------------------------

/** Says a new log entry out loud (once), and nothing else: the ticking clock is never announced. */
function announceNewEntry(prev: Snapshot | null, next: Snapshot): void {
  if (!prev || !next.environment || prev.environment?.id !== next.environment.id) return;
  const prevMax = prev.entries.reduce((m, e) => Math.max(m, e.index), -1);
  const fresh = next.entries.filter((e) => e.index > prevMax);
  const newest = fresh[fresh.length - 1];
  if (!newest) return;
  let text: string;
  if (scoredButHidden(newest)) {
    text = 'Scoring finished: the run scored. The score is hidden from you.';
  } else if (newest.score === null) {
    const message = newest.message.trim();
    text = `Scoring finished with no score: ${message.length > 300 ? `${message.slice(0, 300)}…` : message || 'no message'}`;
  } else {
    const steps = bestSoFar(next.entries, next.environment.direction);
    const best = steps.length > 0 && next.entries[steps[steps.length - 1]!.pos]?.index === newest.index;
    text = `New score ${formatScore(newest.score)} (normalised ${normalisedText(newest.score, next.environment)}).`;
    if (!newest.counts) text += ' It started after the deadline and does not count.';
    else if (best) text += ' Best so far.';
  }
  // Clear first so the same words said twice are still announced.
  announcer.textContent = '';
  setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

// --- state cache ----------------------------------------------------------------------------------

let persistTimer: ReturnType<typeof setTimeout> | undefined;

/** Caches the snapshot so a re-shown view paints at once, at most once a second. */
function persist(soon = false): void {
  if (soon) {
    persistTimer ??= setTimeout(() => {
      persistTimer = undefined;
      persist();
    }, 1000);
    return;
  }
  if (persistTimer) {
    clearTimeout(persistTimer);
    persistTimer = undefined;
  }
  if (snapshot) vscode.setState({ v: STATE_VERSION, snapshot });
}

// --- messages -------------------------------------------------------------------------------------

function onMessage(message: HostMessage): void {
  switch (message.type) {
    case 'snapshot': {
      let next = message.snapshot;
      if (message.entriesFrom !== undefined) {
        // Only the new entries came; the host counts on this document having the ones before them.
        const had = snapshot?.entries ?? [];
        if (had.length < message.entriesFrom) {
          vscode.postMessage({ type: 'ready' }); // out of step: a new "ready" brings the whole log again
          return;
        }
        next = { ...next, entries: had.slice(0, message.entriesFrom).concat(next.entries) };
      }
      announceNewEntry(snapshot, next);
      snapshot = next;
      forgetStaleErrors(next);
      render();
      // Caching serialises the whole snapshot (a long history is megabytes): it waits until the view is
      // painted, and a burst of snapshots is cached once.
      persist(true);
      return;
    }
    case 'jobOutput': {
      if (!snapshot?.job || snapshot.job.jobId !== message.jobId) return;
      snapshot.job.output = appendCapped(snapshot.job.output, message.text, JOB_OUTPUT_VIEW_LIMIT);
      job.append(message.jobId, message.text);
      persist(true);
      return;
    }
    case 'reply': {
      const action = pending.get(message.id);
      if (action === undefined) return;
      pending.delete(message.id);
      if (!message.ok) {
        errors.set(action, message.error?.trim() || 'It did not work; the log has the details (Show log).');
        if (snapshot) errorContexts.set(action, errorContextKey(snapshot));
      }
      render();
      return;
    }
  }
}

window.addEventListener('message', (event: MessageEvent) => {
  const parsed = hostMessageSchema.safeParse(event.data);
  // Anything else posted to this window is not from the host, or not in the catalogue: ignore it.
  if (parsed.success) onMessage(parsed.data);
});

const cached = cachedStateSchema.safeParse(vscode.getState());
if (cached.success) {
  snapshot = cached.data.snapshot;
  render();
}
tick();
vscode.postMessage({ type: 'ready' });
