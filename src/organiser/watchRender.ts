// How the live view shows a study: the cells of a row (shared by the terminal table, the plain lines and
// the Watch Study panel), a table that fits the terminal and is redrawn in place, and plain lines for a
// log file or a pipe. Pure text; writing to the terminal is left to the caller.
import { formatDuration } from '../core/clock';
import { formatScore } from '../core/scores';
import { jobRunningAt, secondsLeftAt, type Flag, type FlagCode, type ScorePair, type StudySnapshot, type WatchRow } from './watchModel';

export interface RowCells {
  participant: string;
  environment: string;
  state: string;
  left: string;
  runs: string;
  last: string;
  best: string;
  job: string;
  integrity: string;
  offset: string;
  contact: string;
  flags: string;
}

export const COLUMN_TITLES: RowCells = {
  participant: 'participant',
  environment: 'environment',
  state: 'state',
  left: 'left',
  runs: 'runs',
  last: 'last (norm)',
  best: 'best (norm)',
  job: 'job',
  integrity: 'log',
  offset: 'clock',
  contact: 'contact',
  flags: 'flags',
};

/** Short names of the flags for the table's last column; the file and the list below the table say more. */
export const FLAG_SHORT: Record<FlagCode, string> = {
  unreachable: 'UNREACHED',
  'log-not-intact': 'LOG',
  'clock-offset': 'CLOCK',
  'failed-runs': 'FAILING',
  'not-started': 'NOT-STARTED',
  'runs-after-deadline': 'LATE-RUNS',
  'job-overrun': 'JOB-OVERRUN',
};

const STATE_WORDS: Record<NonNullable<WatchRow['state']>, string> = {
  not_started: 'not started',
  running: 'running',
  paused: 'paused',
  ended: 'ended',
};

function score(p: ScorePair | null): string {
  if (!p) return '-';
  return p.normalised === null ? formatScore(p.score) : `${formatScore(p.score)} (${formatScore(Number(p.normalised.toFixed(2)))})`;
}

function age(seconds: number): string {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function short(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60
    ? `${s}s`
    : s < 3600
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
      : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function rowCells(row: WatchRow, flags: readonly Flag[], nowMs: number): RowCells {
  const left = secondsLeftAt(row, nowMs);
  const job = jobRunningAt(row, nowMs);
  const own = flags.filter((f) => f.host === row.host && f.participant === row.participant);
  const offset = row.clockOffsetMs;
  return {
    participant: row.participant,
    environment: row.environment ?? '?',
    state: row.state === null ? (row.error ? 'unreached' : 'reading') : `${STATE_WORDS[row.state]}${row.error ? ' (stale)' : ''}`,
    left: left === null || row.state === 'ended' ? '-' : `${formatDuration(left)}${row.grantedS ? '+' : ''}`,
    runs: String(row.runs),
    // "hidden": the participant does not see this score (scoring.visible); it is the one that counts.
    last: `${score(row.last)}${row.hiddenScores && row.last ? ' hidden' : ''}`,
    best: `${score(row.best)}${row.hiddenScores && row.best ? ' hidden' : ''}`,
    job: job === null ? '-' : short(job),
    integrity: row.integrity === 'intact' ? 'intact' : row.integrity === 'broken' ? 'BROKEN' : '?',
    // The sign of what is shown: an offset that rounds to 0.0 s is +0.0s, never -0.0s.
    offset: offset === null ? '-' : `${Math.round(offset / 100) < 0 ? '-' : '+'}${(Math.abs(offset) / 1000).toFixed(1)}s`,
    contact: row.lastContact ? age((nowMs - Date.parse(row.lastContact)) / 1000) : 'never',
    flags: own.map((f) => FLAG_SHORT[f.code]).join(' '),
  };
}

function summaryLine(snapshot: StudySnapshot): string {
  const c = snapshot.counts;
  const parts = [`${c.hosts} host${c.hosts === 1 ? '' : 's'}`, `${c.running} running`, `${c.paused} paused`, `${c.notStarted} not started`, `${c.ended} ended`];
  if (c.unknown) parts.push(`${c.unknown} never reached`);
  parts.push(`${snapshot.flags.length} flag${snapshot.flags.length === 1 ? '' : 's'}`);
  return parts.join(', ');
}

function clockTime(iso: string): string {
  return iso.slice(11, 19);
}

function cut(text: string, width: number): string {
  if (width <= 0) return '';
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
}

export interface TableOptions {
  /** Terminal width and height. */
  columns: number;
  rows: number;
  /** When the next refresh starts (this machine's clock), for the header. */
  nextRefreshMs?: number;
  /** Where the flags file is, for the header. */
  flagsFile?: string;
  /** Hosts read so far by a refresh under way. */
  reading?: { finished: number; total: number };
}

const ORDER: Array<keyof RowCells> = ['participant', 'environment', 'state', 'left', 'runs', 'last', 'best', 'job', 'integrity', 'offset', 'contact', 'flags'];
/** Dropped first when the terminal is narrow, in this order. */
const DROPPABLE: Array<keyof RowCells> = ['contact', 'offset', 'job', 'environment', 'last'];
const MAX_WIDTH: Partial<Record<keyof RowCells, number>> = { participant: 22, environment: 20 };

/**
 * The whole screen: a header, the table and the flags, fitted to the terminal. Rows with a flag come first
 * when not every row fits, so nothing that needs the organiser is off screen.
 */
export function renderTable(snapshot: StudySnapshot | undefined, rowsNow: readonly WatchRow[], nowMs: number, o: TableOptions): string[] {
  const width = Math.max(40, o.columns);
  const height = Math.max(8, o.rows);
  const flags = snapshot?.flags ?? [];
  const next = o.reading
    ? `, reading again (${o.reading.finished}/${o.reading.total})`
    : o.nextRefreshMs !== undefined
      ? `, next in ${Math.max(0, Math.round((o.nextRefreshMs - nowMs) / 1000))} s`
      : '';
  const header = snapshot
    ? [
        cut(`RE-Bench study: ${summaryLine(snapshot)}.`, width),
        cut(
          `Read ${clockTime(snapshot.at)} in ${(snapshot.durationMs / 1000).toFixed(1)} s${next}${o.flagsFile ? `; flags written to ${o.flagsFile}` : ''}. Ctrl-C quits.`,
          width,
        ),
      ]
    : [cut(`RE-Bench study: reading ${rowsNow.length} host${rowsNow.length === 1 ? '' : 's'} (${o.reading?.finished ?? 0} read so far)… Ctrl-C quits.`, width)];
  header.push('');

  const cells = rowsNow.map((r) => ({ row: r, cells: rowCells(r, flags, nowMs) }));
  let columns = [...ORDER];
  const widthOf = (key: keyof RowCells) => Math.min(MAX_WIDTH[key] ?? 999, Math.max(COLUMN_TITLES[key].length, ...cells.map((c) => c.cells[key].length)));
  const total = (cols: Array<keyof RowCells>) => cols.reduce((n, k) => n + widthOf(k) + 2, 0);
  for (const drop of DROPPABLE) {
    if (total(columns) <= width) break;
    columns = columns.filter((c) => c !== drop);
  }
  const line = (c: RowCells) =>
    cut(
      columns
        .map((k) => (k === 'flags' ? c[k] : cut(c[k], widthOf(k)).padEnd(widthOf(k))))
        .join('  ')
        .trimEnd(),
      width,
    );

  const flagLines = flags.map((f) => cut(`${FLAG_SHORT[f.code]} ${f.participant} (${f.host}): ${f.message}`, width));
  // The table gets what the header and at least a few flag lines leave.
  const flagRoom = flagLines.length ? Math.min(flagLines.length + 1, Math.max(3, Math.floor(height / 4))) : 0;
  const tableRoom = Math.max(2, height - header.length - 1 - flagRoom);
  let shown = cells;
  let hidden = 0;
  if (cells.length > tableRoom) {
    const flagged = cells.filter((c) => c.cells.flags !== '');
    const quiet = cells.filter((c) => c.cells.flags === '');
    shown = [...flagged, ...quiet].slice(0, tableRoom - 1);
    hidden = cells.length - shown.length;
  }
  const out = [...header, line(COLUMN_TITLES), ...shown.map((c) => line(c.cells))];
  if (hidden) out.push(cut(`… ${hidden} more host${hidden === 1 ? '' : 's'} not shown (a taller terminal shows them; --plain lists every host).`, width));
  if (flagLines.length) {
    const room = Math.max(1, height - out.length - 1);
    out.push('');
    out.push(...flagLines.slice(0, room));
    if (flagLines.length > room) out[out.length - 1] = cut(`… and ${flagLines.length - room + 1} more flags: see the flags file.`, width);
  }
  return out.slice(0, height);
}

/** The text that redraws the screen in place: home, each line cleared to its end, the rest cleared. */
export function redrawSequence(lines: readonly string[]): string {
  return `\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\x1b[J`;
}

/** Enters the terminal's alternate screen with the cursor hidden; leaveScreen() gives the screen back. */
export const ENTER_SCREEN = '\x1b[?1049h\x1b[?25l';
export const LEAVE_SCREEN = '\x1b[?25h\x1b[?1049l';

/**
 * One refresh as plain lines (for a log file or a pipe): a header, one line per host with every field as
 * key=value, and one line per flag.
 */
export function plainLines(snapshot: StudySnapshot, nowMs: number = Date.parse(snapshot.at)): string[] {
  const lines = [`${snapshot.at} refresh ${snapshot.refresh} (${(snapshot.durationMs / 1000).toFixed(1)} s): ${summaryLine(snapshot)}`];
  for (const r of snapshot.rows) {
    const c = rowCells(r, snapshot.flags, nowMs);
    const fields = [
      `host=${r.host}`,
      `environment=${c.environment}`,
      `state=${r.state ?? 'unknown'}`,
      `left=${c.left}`,
      `runs=${c.runs}`,
      `last=${r.last ? formatScore(r.last.score) : '-'}`,
      `last_norm=${r.last?.normalised == null ? '-' : formatScore(Number(r.last.normalised.toFixed(4)))}`,
      `best=${r.best ? formatScore(r.best.score) : '-'}`,
      `best_norm=${r.best?.normalised == null ? '-' : formatScore(Number(r.best.normalised.toFixed(4)))}`,
      `job=${c.job}`,
      `log=${r.integrity}`,
      `clock_offset=${c.offset}`,
      `contact=${r.lastContact ?? 'never'}`,
    ];
    if (r.hiddenScores) fields.push('scores=hidden');
    if (r.grantedS) fields.push(`granted=${Math.round(r.grantedS)}s`);
    if (r.error) fields.push(`error=${JSON.stringify(r.error)}`);
    lines.push(`  ${r.participant}: ${fields.join(' ')}`);
  }
  for (const f of snapshot.flags) lines.push(`  FLAG ${f.code} ${f.participant} (${f.host}) since ${f.since}: ${f.message}`);
  return lines;
}
