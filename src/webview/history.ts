// The score sections: the score that counts, the history chart and the history table (the chart's
// accessible alternative and the record of every run).
import type { ChartInput } from '../core/chart';
import { formatDuration } from '../core/clock';
import type { ScoreLogEntry } from '../core/runnerProtocol';
import {
  countedEntry as chosenEntry,
  entryScoreText,
  formatNormalised,
  formatScore,
  isNoScore,
  normalise,
  scoredButHidden,
  visibilityNote,
} from '../core/scores';
import { secondsLeftNow } from '../core/timeLeft';
import type { EnvironmentView, Snapshot } from '../core/webviewProtocol';
import { chartFor, drawLegend } from './chartView';
import { h, replaceChildren } from './dom';
import { ActionButton, type Request, type Section, type ViewContext } from './controls';

/** Rows the narrow view shows before "Show all N runs". */
export const VIEW_TABLE_ROWS = 10;

export function normalisedText(score: number | null, env: EnvironmentView): string {
  if (score === null) return '—';
  const yn = normalise(score, env.startingScore, env.referenceScore);
  return formatNormalised(yn);
}

export function countedEntry(snap: Snapshot): ScoreLogEntry | undefined {
  return snap.countedIndex === null ? undefined : snap.entries.find((e) => e.index === snap.countedIndex);
}

// --- the score that counts ------------------------------------------------------------------------

export class ScoresSection implements Section {
  readonly root = h('section', { class: 'scores', 'aria-label': 'Scores' });
  private key = '';

  update(ctx: ViewContext): void {
    const { environment: env, entries } = ctx.snap;
    const key = JSON.stringify([env, ctx.snap.countedIndex, entries.length, entries[entries.length - 1]?.hash]);
    if (key === this.key) return;
    this.key = key;
    show(this.root, !!env && !!ctx.snap.session);
    if (!env) return replaceChildren(this.root);
    if (entries.length === 0) {
      return replaceChildren(
        this.root,
        h(
          'p',
          { class: 'muted empty-scores' },
          env.submit
            ? 'No answer submitted yet. Submit answer… sends your answer: it is scored once, and the session ends.'
            : 'No scores yet. Score now runs the scoring function on your solution and adds the result to your score log.',
        ),
      );
    }
    const note = visibilityNote(env.visible);
    const noScore = entries.filter(isNoScore).length;
    if (env.visible === 'none') {
      // Only that each run happened and whether it scored: no value, no best, nothing computed from a score.
      const scored = entries.filter(scoredButHidden).length;
      return replaceChildren(
        this.root,
        h(
          'dl',
          { class: 'score-list' },
          h('dt', {}, 'Runs'),
          h('dd', {}, `${entries.length}`, h('span', { class: 'muted' }, ` · ${scored} scored · ${noScore} with no score`)),
        ),
        h('p', { class: 'visibility-note muted' }, note),
      );
    }
    const counted = countedEntry(ctx.snap);
    const latest = entries[entries.length - 1]!;
    const scoreLine = (e: ScoreLogEntry, big: boolean): HTMLElement =>
      e.score !== null
        ? h(
            'span',
            { class: 'score-value' },
            h('span', { class: big ? 'score-big' : 'score-mid' }, formatScore(e.score)),
            h('span', { class: 'score-norm muted' }, `normalised ${normalisedText(e.score, env)}`),
          )
        : e.manual
          ? h('span', { class: 'score-value manual-score-text' }, 'scored by a person later')
          : h('span', { class: 'score-value no-score-text' }, 'no score');
    const rows: HTMLElement[] = [
      h('dt', {}, env.aggregation === 'best' ? 'Best score (counts)' : 'Last score (counts)'),
      h('dd', {}, counted ? scoreLine(counted, true) : latest.manual ? scoreLine(latest, true) : h('span', { class: 'muted' }, 'none yet')),
    ];
    if (!latest.manual && (!counted || latest.index !== counted.index)) {
      rows.push(
        h('dt', {}, 'Latest run'),
        h('dd', {}, scoreLine(latest, false), latest.counts ? null : h('span', { class: 'score-norm muted' }, 'started after the deadline: does not count')),
      );
    }
    rows.push(h('dt', {}, 'Runs'), h('dd', {}, `${entries.length}`, noScore > 0 ? h('span', { class: 'muted' }, ` · ${noScore} with no score`) : null));
    replaceChildren(
      this.root,
      h('dl', { class: 'score-list' }, ...rows),
      h(
        'p',
        { class: 'norm-hint muted' },
        `Normalised: 0 is the starting score (${formatScore(env.startingScore)}), 1 the reference (${formatScore(env.referenceScore)}).`,
      ),
      note ? h('p', { class: 'visibility-note muted' }, note) : null,
    );
  }
}

function show(el: HTMLElement, visible: boolean): void {
  el.hidden = !visible;
}

// --- chart ----------------------------------------------------------------------------------------

export class ChartSection implements Section {
  readonly root: HTMLElement;
  private readonly area = h('div', { class: 'chart-area' });
  private readonly legend = h('div', { class: 'legend-wrap' });
  private key = '';
  private last: ViewContext | null = null;
  private width = 0;

  constructor(private readonly layout: 'view' | 'history') {
    this.root = h(
      'section',
      { class: 'chart-section', 'aria-label': 'Score history chart' },
      h('h3', { class: 'section-heading' }, layout === 'view' ? 'Score history' : 'Score over time'),
      this.area,
      this.legend,
    );
    // Redraw at the new width when the sidebar or panel is resized.
    const observer = new ResizeObserver(() => {
      const w = Math.floor(this.area.clientWidth);
      if (w > 0 && w !== this.width && this.last) this.update(this.last);
    });
    observer.observe(this.area);
  }

  update(ctx: ViewContext): void {
    this.last = ctx;
    const { environment: env, session, entries } = ctx.snap;
    // Where every score is hidden there is nothing to draw: a chart of the runs alone would read as failures.
    show(this.root, !!env && !!session && env.visible !== 'none');
    if (!env || !session || env.visible === 'none') return;
    const width = Math.floor(this.area.clientWidth) || (this.layout === 'history' ? 900 : 280);
    const left = secondsLeftNow(session, ctx.nowMs);
    // The best-so-far line reaches "now"; a minute's resolution is plenty and keeps redraws rare.
    const nowElapsedS = session.state === 'not_started' || left === null ? null : Math.floor((session.timeLimitS - left) / 60) * 60;
    const key = JSON.stringify([width, env, session.timeLimitS, ctx.snap.countedIndex, entries.length, entries[entries.length - 1]?.hash, nowElapsedS]);
    if (key === this.key) return;
    this.key = key;
    this.width = width;
    const height = this.layout === 'history' ? Math.min(440, Math.max(260, Math.round(width * 0.36))) : 200;
    const input: ChartInput = {
      entries,
      direction: env.direction,
      aggregation: env.aggregation,
      startingScore: env.startingScore,
      referenceScore: env.referenceScore,
      timeLimitS: session.timeLimitS,
      countedIndex: ctx.snap.countedIndex,
      nowElapsedS,
    };
    replaceChildren(this.area, chartFor(input, width, height, this.layout === 'view'));
    replaceChildren(this.legend, drawLegend(env.aggregation));
  }

  tick(ctx: ViewContext): void {
    this.update(ctx);
  }
}

// --- table ----------------------------------------------------------------------------------------

/** What to say about a run besides its score; for "no score", why, when the entry says. */
function statusBadges(e: ScoreLogEntry, counted: boolean, best: boolean): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (best) out.push(['best', 'good']);
  if (counted) out.push(['counts', 'good']);
  if (e.timed_out) out.push(['timed out', 'bad']);
  else if (e.killed) out.push(['killed', 'bad']);
  else if (e.score === null && e.signal) out.push([`signal ${e.signal}`, 'bad']);
  else if (e.score === null && e.exit_code !== null && e.exit_code !== 0) out.push([`exit ${e.exit_code}`, 'bad']);
  else if (e.manual) out.push(['scored by a person later', 'plain']);
  else if (scoredButHidden(e)) out.push(['scored', 'good']);
  else if (e.score === null) out.push(['no score', 'bad']);
  if (!e.counts) out.push(['after deadline', 'muted']);
  if (e.kind === 'final') out.push(['final run', 'plain']);
  if (e.kind === 'submit') out.push(['submitted answer', 'plain']);
  return out;
}

const LONG_MESSAGE = 140;

function messageNode(message: string, wide: boolean): HTMLElement {
  const text = message.trim();
  if (!text) return h('span', { class: 'muted' }, '—');
  const firstLine = text.split('\n', 1)[0] ?? '';
  if (wide && (text.length > LONG_MESSAGE || text.includes('\n'))) {
    // Long messages (a traceback) fold away; the summary shows the first line.
    return h(
      'details',
      { class: 'message-details' },
      h('summary', {}, firstLine.length > LONG_MESSAGE ? `${firstLine.slice(0, LONG_MESSAGE)}…` : firstLine),
      h('div', { class: 'message-full' }, text),
    );
  }
  return h('span', { class: wide ? 'message' : 'message clamp', title: text.length > 4000 ? `${text.slice(0, 4000)}…` : text }, text);
}

export class TableSection implements Section {
  readonly root: HTMLElement;
  private readonly body = h('div', { class: 'table-wrap' });
  private readonly showAll: ActionButton;
  private key = '';

  /** "Changes" and "Restore" for a run whose solution was kept. */
  private keptButtons(e: ScoreLogEntry): HTMLElement[] {
    const button = (action: 'showChanges' | 'restoreSolution', label: string, title: string) => {
      const b = h(
        'button',
        { type: 'button', class: 'btn quiet small', title, 'aria-label': `${title} (run ${e.index + 1})`, 'data-focus-key': `${action}:${e.index}` },
        label,
      );
      b.addEventListener('click', () => this.request(action, e.index));
      return b;
    };
    return [button('showChanges', 'Changes', 'Show changes since this run'), button('restoreSolution', 'Restore', 'Restore the solution of this run')];
  }

  constructor(
    private readonly layout: 'view' | 'history',
    private readonly request: Request,
  ) {
    this.showAll = new ActionButton('showHistory', 'Show all runs', request, 'quiet');
    this.root = h(
      'section',
      { class: 'history-table', 'aria-label': 'Score history table' },
      layout === 'history' ? h('h3', { class: 'section-heading' }, 'All runs') : null,
      this.body,
      layout === 'view' ? h('div', { class: 'show-all' }, this.showAll.el) : null,
    );
  }

  update(ctx: ViewContext): void {
    const { environment: env, session, entries } = ctx.snap;
    // With no runs yet the scores section already says so.
    show(this.root, !!env && !!session && entries.length > 0);
    const more = this.layout === 'view' && entries.length > VIEW_TABLE_ROWS;
    this.showAll.set({ visible: more, label: `Show all ${entries.length} runs`, busyLabel: ctx.pending.has('showHistory') ? 'Opening…' : null });
    if (!env || !session) return;
    // Changes and Restore need the VM: not offered while the view shows a session it is not connected to.
    const reachable = ctx.snap.connection.kind === 'connected' || ctx.snap.connection.kind === 'reconnecting';
    const key = JSON.stringify([env, ctx.snap.countedIndex, entries.length, entries[entries.length - 1]?.hash, reachable]);
    if (key === this.key) return;
    this.key = key;
    if (entries.length === 0) return replaceChildren(this.body, h('p', { class: 'muted' }, 'No runs yet.'));

    const wide = this.layout === 'history';
    const newestFirst = [...entries].reverse();
    const shown = wide ? newestFirst : newestFirst.slice(0, VIEW_TABLE_ROWS);
    const caption =
      shown.length < entries.length
        ? `The last ${shown.length} of ${entries.length} runs, newest first`
        : `All ${entries.length} ${entries.length === 1 ? 'run' : 'runs'}, newest first`;
    // The narrow view has no room for a Solution column: a run's Changes and Restore go on its second line,
    // under its message, where they wrap in the narrowest sidebar.
    const headers = wide ? ['#', 'Time', 'Score', 'Normalised', 'Status', 'Took', 'Message', 'Solution'] : ['#', 'Time', 'Score', 'Norm.', 'Status'];
    const head = h(
      'thead',
      {},
      h('tr', {}, ...headers.map((t, i) => h('th', { scope: 'col', class: `col-${i}`, title: t === 'Norm.' ? 'Normalised score' : null }, t))),
    );
    const body = h('tbody', {});
    const bestIndex = chosenEntry(entries, env.direction, 'best')?.index ?? null;
    for (const e of shown) {
      const counted = ctx.snap.countedIndex !== null && e.index === ctx.snap.countedIndex;
      const best = e.index === bestIndex;
      const flags = [counted ? 'counted' : '', best ? 'best' : '', e.counts ? '' : 'late', isNoScore(e) ? 'none' : '', scoredButHidden(e) ? 'hidden-score' : '']
        .filter(Boolean)
        .join(' ');
      const badges = h('span', { class: 'badges' }, ...statusBadges(e, counted, best).map(([t, tone]) => h('span', { class: `badge ${tone}` }, t)));
      const keptOnVm = !!e.snapshot && 'id' in e.snapshot;
      const kept = keptOnVm && reachable;
      const cells: HTMLElement[] = [
        h('th', { scope: 'row', class: 'num' }, String(e.index + 1)),
        h('td', { class: 'num time' }, formatDuration(e.elapsed_s)),
        h(
          'td',
          { class: `num score${isNoScore(e) ? ' no-score-text' : ''}`, title: scoredButHidden(e) ? 'This run scored; the score is hidden from you.' : null },
          entryScoreText(e),
        ),
        h('td', { class: 'num norm' }, normalisedText(e.score, env)),
        h('td', { class: 'status' }, badges),
      ];
      if (wide) {
        cells.push(
          h('td', { class: 'num muted' }, `${Math.round(e.duration_s)} s`),
          h('td', { class: 'message-cell' }, messageNode(e.message, true)),
          h(
            'td',
            { class: 'kept' },
            ...(kept
              ? this.keptButtons(e)
              : [
                  h(
                    'span',
                    { class: 'muted', title: keptOnVm ? 'Kept on the VM: connect to it to compare or restore' : 'No solution was kept for this run' },
                    '—',
                  ),
                ]),
          ),
        );
      }
      body.append(h('tr', { class: `run ${flags}` }, ...cells));
      if (!wide && (e.message.trim() || kept)) {
        // The narrow view gives the message, and the kept solution's actions, a line of their own under the run.
        body.append(
          h(
            'tr',
            { class: `message-row ${flags}` },
            h(
              'td',
              { colspan: headers.length },
              e.message.trim() ? messageNode(e.message, false) : null,
              kept ? h('div', { class: 'kept' }, ...this.keptButtons(e)) : null,
            ),
          ),
        );
      }
    }
    replaceChildren(this.body, h('table', { class: wide ? 'runs wide' : 'runs' }, h('caption', {}, caption), head, body));
  }
}
