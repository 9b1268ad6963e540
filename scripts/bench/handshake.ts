// Marks in a shared folder, by which the bench and its probe inside the extension host take turns.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Records that `name` happened, with optional data. */
export function mark(dir: string, name: string, data: unknown = {}): void {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(data));
  fs.renameSync(`${file}.tmp`, file);
}

/** Waits for the mark `name` and returns its data; fails on an "error" mark or after timeoutMs. */
export async function waitForMark<T = unknown>(dir: string, name: string, timeoutMs: number): Promise<T> {
  const file = path.join(dir, `${name}.json`);
  const error = path.join(dir, 'error.json');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
    if (fs.existsSync(error)) {
      const e = JSON.parse(fs.readFileSync(error, 'utf8')) as { message?: string };
      throw new Error(`The probe in the extension host failed: ${e.message ?? 'no message'}`);
    }
    if (Date.now() > deadline) throw new Error(`"${name}" did not happen within ${Math.round(timeoutMs / 1000)} s.`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
