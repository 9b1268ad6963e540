// Every notification the extension shows names itself: a toast without "RE-Bench:" is a message from
// nowhere among the others in the corner. Modal dialogs are left out (they stand on their own).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const SRC = path.join(__dirname, '..', '..', 'src');

function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? sources(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : []));
}

describe('notifications', () => {
  it('every non-modal notification with a literal text starts with "RE-Bench:"', () => {
    const unnamed: string[] = [];
    let seen = 0;
    for (const file of sources(SRC)) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/window\.show(?:Information|Warning|Error)Message\(\s*(['`"])/g)) {
        const start = (m.index ?? 0) + m[0].length - 1;
        const call = text.slice(start, start + 600);
        if (/modal:\s*true/.test(call.split(/\)\s*[;.]/)[0] ?? call)) continue;
        seen++;
        if (call.slice(1).startsWith('${')) continue; // a text built elsewhere (its own test checks it)
        if (!call.slice(1).startsWith('RE-Bench')) {
          const line = text.slice(0, start).split('\n').length;
          unnamed.push(`${path.relative(SRC, file)}:${line}: ${call.slice(0, 60)}`);
        }
      }
    }
    assert.ok(seen > 10, `only ${seen} notifications found: the scan is broken`);
    assert.deepEqual(unnamed, []);
  });

  it('every non-modal notification whose text is a variable gets it from a text that starts with "RE-Bench:"', () => {
    // `showErrorMessage(result.message)` once showed "The score log is NOT intact" with no name on it.
    const unnamed: string[] = [];
    let seen = 0;
    for (const file of sources(SRC)) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/window\.show(?:Information|Warning|Error)Message\(\s*(?:`\$\{)?([A-Za-z_][\w.]*)/g)) {
        const start = m.index ?? 0;
        const call = text.slice(start, start + 600);
        if (/modal:\s*true/.test(call.split(/\)\s*[;.]/)[0] ?? call)) continue;
        seen++;
        const name = m[1]!;
        // The variable's value: the last `const NAME =` (or `let`) before the call, or a parameter given one.
        const before = text.slice(0, start);
        const assigned = [...before.matchAll(new RegExp(`(?:const|let)\\s+${name.replace(/\./g, '\\.')}\\s*=\\s*([\\s\\S]{0,200})`, 'g'))].at(-1)?.[1] ?? '';
        const named = /^\s*(?:\(?\s*[\w.]+\s*\?\s*)?[`'"]RE-Bench:/.test(assigned);
        if (!named) {
          const line = before.split('\n').length;
          unnamed.push(`${path.relative(SRC, file)}:${line}: ${call.slice(0, 70)}`);
        }
      }
    }
    assert.ok(seen > 3, `only ${seen} notifications with a variable text found: the scan is broken`);
    assert.deepEqual(unnamed, []);
  });
});
