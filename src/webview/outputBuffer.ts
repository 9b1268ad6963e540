// Scoring job output for the view, capped from the front so that no amount of output can freeze it.
// appendCapped and LatestSnapshot are pure and also used on the host; JobOutputView is the DOM side.
import { JOB_OUTPUT_VIEW_LIMIT, type Snapshot } from '../core/webviewProtocol';

/** A cut can fall inside a surrogate pair; a lone low surrogate at the front would show as "�". */
function dropLoneLowSurrogate(text: string): string {
  const c = text.charCodeAt(0);
  return c >= 0xdc00 && c <= 0xdfff ? text.slice(1) : text;
}

/** existing + text, keeping only the last `limit` characters. Pure; the host uses it too. */
export function appendCapped(existing: string, text: string, limit: number): string {
  if (text.length >= limit) return dropLoneLowSurrogate(text.slice(text.length - limit));
  const joined = existing + text;
  return joined.length > limit ? dropLoneLowSurrogate(joined.slice(joined.length - limit)) : joined;
}

/**
 * The latest snapshot, kept on the host so a view that is re-opened (its document is destroyed while
 * hidden) gets everything at once, job output included.
 */
export class LatestSnapshot {
  private current: Snapshot | null = null;

  get value(): Snapshot | null {
    return this.current;
  }

  /** Stores a snapshot and returns what to send. */
  set(snapshot: Snapshot): Snapshot {
    const prev = this.current?.job;
    const job = snapshot.job;
    // Output only grows within a job: keep the deltas already received if this snapshot has less.
    if (prev && job && prev.jobId === job.jobId && prev.output.length > job.output.length) {
      snapshot = { ...snapshot, job: { ...job, output: prev.output } };
    }
    this.current = snapshot;
    return snapshot;
  }

  /** Adds output to the current job; false when the text belongs to another job (then send nothing). */
  appendJobOutput(jobId: string, text: string): boolean {
    const s = this.current;
    if (!s?.job || s.job.jobId !== jobId) return false;
    this.current = { ...s, job: { ...s.job, output: appendCapped(s.job.output, text, JOB_OUTPUT_VIEW_LIMIT) } };
    return true;
  }
}

/**
 * A <pre> showing a job's output. Appends are batched to one paint per animation frame, and the view
 * follows the end of the output unless the participant has scrolled up to read something.
 */
export class JobOutputView {
  readonly element: HTMLPreElement;
  private text = '';
  private pending = '';
  private scheduled = false;
  private follow = true;

  constructor(private readonly limit: number, label: string) {
    this.element = document.createElement('pre');
    this.element.className = 'job-output';
    // Scrollable regions must be reachable by keyboard.
    this.element.tabIndex = 0;
    this.element.setAttribute('aria-label', label);
    this.element.addEventListener('scroll', () => {
      const el = this.element;
      this.follow = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
    });
  }

  get value(): string {
    return appendCapped(this.text, this.pending, this.limit);
  }

  /** Replaces the whole output (a snapshot). */
  set(text: string): void {
    this.pending = '';
    const next = appendCapped('', text, this.limit);
    if (next === this.text) return;
    this.text = next;
    this.paint();
  }

  /** Adds a chunk (a delta); painted on the next frame together with any other chunks. */
  append(chunk: string): void {
    if (!chunk) return;
    this.pending = appendCapped(this.pending, chunk, this.limit);
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      if (!this.pending) return;
      this.text = appendCapped(this.text, this.pending, this.limit);
      this.pending = '';
      this.paint();
    });
  }

  private paint(): void {
    this.element.textContent = this.text;
    this.element.classList.toggle('empty', this.text.length === 0);
    if (this.follow) this.element.scrollTop = this.element.scrollHeight;
  }
}
