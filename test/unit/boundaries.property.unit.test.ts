// Property-based tests of the JSON boundaries: environment manifests, session profiles, the runner's
// replies and stream lines (also as RunnerClient reads them), and the webview messages. Each parser
// gets arbitrary text, arbitrary JSON, mutations of valid documents and generated valid documents.
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import type { z } from 'zod';
import { formatZodError, SessionError } from '../../src/core/errors';
import type { Logger } from '../../src/core/logger';
import { manifestSchema, parseManifest } from '../../src/core/manifest';
import { parseProfile } from '../../src/core/profile';
import {
  logReplySchema,
  parseRunnerJson,
  runnerErrorSchema,
  statusSchema,
  streamEventSchema,
  verifySchema,
  type RunnerStatus,
  type ScoreLogEntry,
  type StreamEvent,
} from '../../src/core/runnerProtocol';
import { JobInterruptedError, LineSplitter, RunnerCommandError, RunnerClient } from '../../src/core/runnerClient';
import type { ConnectionState, ExecOptions, ExecResult, Target } from '../../src/core/target';
import { hostMessageSchema, viewActions, viewMessageSchema, type HostMessage, type Snapshot, type ViewMessage } from '../../src/core/webviewProtocol';
import { recordFigure } from '../support/figures';

// ---------------------------------------------------------------------------------------------
// Counting: every call of a parser under test counts as one input tried, shrinking runs included.

const tried = new Map<string, number>();
function count(parser: string, n = 1): void {
  tried.set(parser, (tried.get(parser) ?? 0) + n);
}

const P = {
  manifest: 'parseManifest',
  profile: 'parseProfile',
  runner: 'parseRunnerJson: status, verify, log, stream events',
  splitter: 'LineSplitter',
  client: 'RunnerClient: streams and replies',
  view: 'hostMessageSchema, viewMessageSchema',
} as const;

// ---------------------------------------------------------------------------------------------
// Generic helpers

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = (string | number)[];

/** JSON.parse(JSON.stringify(v)): what a value looks like after crossing a JSON boundary (-0 becomes 0). */
function viaJson<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Whether a string is well-formed UTF-16 (no lone surrogates), so that it can be shown and encoded. */
function wellFormed(s: string): boolean {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}

/** Serialises anything fc.anything() makes: bigints as strings, undefined as the word. */
function serialiseAnything(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? 'undefined';
  } catch {
    return String(v);
  }
}

/** Every node below the root, with its path (objects' keys and arrays' indexes). */
function nodes(value: Json, prefix: Path = []): { path: Path; value: Json }[] {
  const out: { path: Path; value: Json }[] = [];
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push({ path: [...prefix, i], value: v }, ...nodes(v, [...prefix, i]));
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) out.push({ path: [...prefix, k], value: v }, ...nodes(v, [...prefix, k]));
  }
  return out;
}

/** The nodes that are not objects: what a document states, as opposed to what defaults may add to. */
function leaves(value: Json): { path: Path; value: Json }[] {
  return nodes(value).filter(({ value: v }) => v === null || typeof v !== 'object' || Array.isArray(v));
}

function parentOf(root: Json, path: Path): Json {
  let node: Json = root;
  for (const key of path.slice(0, -1)) node = (node as Record<string, Json>)[key as string] as Json;
  return node;
}

function setAt(root: Json, path: Path, value: Json): Json {
  const copy = structuredClone(root);
  (parentOf(copy, path) as Record<string, Json>)[path[path.length - 1] as string] = value;
  return copy;
}

function deleteAt(root: Json, path: Path): Json {
  const copy = structuredClone(root);
  delete (parentOf(copy, path) as Record<string, Json>)[path[path.length - 1] as string];
  return copy;
}

/** How formatZodError names a path. */
function dotted(path: Path): string {
  return path.length ? path.map(String).join('.') : '(top level)';
}

/** Whether a formatted error names the path, or a field below it (a deep value inside an array). */
function namesPath(error: string, where: string): boolean {
  return error.includes(`${where}: `) || (where !== '(top level)' && error.includes(`${where}.`));
}

/** A value of another JSON type than `original`, none of which a field of `original`'s type accepts. */
function wrongTypeFor(original: Json, pick: number): Json {
  const byType: Record<string, Json[]> = {
    number: ['NaN', 'Infinity', '-Infinity', '', '12', true, [], { n: 1 }],
    string: [0, -1.5, false, true, ['x'], { s: 'x' }],
    boolean: ['true', 'false', 0, 1, [], {}],
    null: [true, false, [[]]],
    array: ['[]', 7, true, { length: 0 }],
    object: ['{}', 3, false, [[]]],
  };
  const type = original === null ? 'null' : Array.isArray(original) ? 'array' : typeof original;
  const choices = byType[type] ?? ['?'];
  return choices[pick % choices.length] as Json;
}

/** Arrays nested `depth` deep, built without recursion (for values handed over without JSON text). */
function nested(depth: number): Json {
  let v: Json = [];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** Marker replaced in the JSON text by a number literal that JSON.parse reads as ±Infinity. */
const HUGE = '\u0000huge\u0000';
function withHuge(doc: Json, negative: boolean): string {
  return JSON.stringify(doc).replace(JSON.stringify(HUGE), negative ? '-1e999' : '1e999');
}

/** The document as JSON text with the value at `path` replaced by arrays nested `depth` deep (spliced in as text,
 * because JSON.stringify recurses and overflows the stack long before JSON.parse and the schemas do). */
const DEEP = '\u0000deep\u0000';
function withDeep(doc: Json, path: Path, depth: number): string {
  return JSON.stringify(setAt(doc, path, DEEP)).replace(JSON.stringify(DEEP), '['.repeat(depth) + ']'.repeat(depth));
}

/** Arbitrary text of every kind a boundary can be handed. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  fc.json({ maxDepth: 4 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.anything({ maxDepth: 3, withBigInt: true, withNullPrototype: true, withObjectString: true }).map(serialiseAnything),
  fc.constantFrom('', ' ', 'null', '{}', '[]', '"x"', '1e999', 'NaN', 'Infinity', '{"a":', '\u0000', '\ufeff{}', '{"__proto__":{"x":1}}'),
);

/** A JSON document nested very deep, as text (JSON.parse and the schemas must cope). */
const deepText = fc.integer({ min: 1_000, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n));
/** Deeper still, tried once per parser as an explicit example (each costs tens of milliseconds). */
const DEEPEST = '['.repeat(200_000) + ']'.repeat(200_000);

/** Arbitrary text with a deep document now and then (each costs milliseconds, so they are a small share). */
const anyOrDeepText = fc.oneof({ weight: 30, arbitrary: anyText }, { weight: 1, arbitrary: deepText });

const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
const nonNegative = fc.double({ min: 0, noNaN: true, noDefaultInfinity: true });
const envId = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,63}$/);
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const isoTime = fc
  .tuple(
    fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
    fc.constantFrom('Z', '+00:00', '-05:30', '+14:00'),
  )
  .map(([d, zone]) => d.toISOString().replace('Z', zone));

// ---------------------------------------------------------------------------------------------
// Manifests

const relativePath = fc
  .array(
    fc.stringMatching(/^[A-Za-z0-9_. -]{1,12}$/).filter((s) => s !== '..'),
    { minLength: 1, maxLength: 4 },
  )
  .map((parts) => parts.join('/'));

const manifestArb = fc
  .record(
    {
      id: envId,
      title: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).filter((s) => s.length <= 200),
      version: fc.string({ minLength: 1, maxLength: 40 }),
      time_limit_s: fc.integer({ min: 60, max: 7 * 86_400 }),
      instructions: relativePath,
      instructions_before_start: fc.boolean(),
      scoring: fc.record(
        {
          command: fc.array(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 5 }),
          direction: fc.constantFrom('higher', 'lower'),
          aggregation: fc.constantFrom('best', 'last'),
          starting_score: finite,
          reference_score: finite,
          timeout_s: fc.integer({ min: 1, max: 86_400 }),
          output_limit_bytes: fc.integer({ min: 1024, max: 64 * 1024 * 1024 }),
        },
        { requiredKeys: ['command', 'direction', 'aggregation', 'starting_score', 'reference_score', 'timeout_s'] },
      ),
      solution: relativePath,
      hardware: fc.record(
        {
          gpus: fc.integer({ min: 0, max: 64 }),
          gpu_model: fc.option(fc.string({ minLength: 1, maxLength: 40 }), { nil: null }),
          min_free_disk_gb: nonNegative,
        },
        { requiredKeys: [] },
      ),
      pauses_allowed: fc.boolean(),
    },
    { requiredKeys: ['id', 'title', 'version', 'instructions', 'scoring', 'solution'] },
  )
  .filter((m) => m.scoring.starting_score !== m.scoring.reference_score)
  .map((m) => viaJson(m) as unknown as Json);

/** Keys the manifest may leave out (they have defaults). */
const MANIFEST_OPTIONAL = new Set([
  'time_limit_s',
  'instructions_before_start',
  'hardware',
  'hardware.gpus',
  'hardware.gpu_model',
  'hardware.min_free_disk_gb',
  'pauses_allowed',
  'scoring.output_limit_bytes',
]);

function parseManifestCounted(text: string, source?: string) {
  count(P.manifest);
  return parseManifest(text, source);
}

/** The documented shapes of a manifest rejection: names the file, then says what is wrong. */
function assertManifestError(error: string, source: string): void {
  assert.ok(error.trim().length > 0, 'the error is empty');
  assert.ok(error.startsWith(`${source} is `), `the error does not name ${source}: ${error}`);
  const asJson = error.startsWith(`${source} is not valid JSON (`) && error.endsWith('Fix the file and try again.');
  const asSchema = new RegExp(`^${escapeRegExp(source)} is not a valid environment manifest: \\S.*: \\S`, 's').test(error);
  assert.ok(asJson || asSchema, `not one of the documented manifest errors: ${error}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('property: environment manifests (parseManifest)', () => {
  const source = fc.constantFrom('manifest.json', 'environments/demo/manifest.json', '/tmp/ümlaut env/manifest.json');

  it('never throws on arbitrary text, and every rejection names the file and says what is wrong', () => {
    fc.assert(
      fc.property(anyOrDeepText, source, (text, src) => {
        const r = parseManifestCounted(text, src);
        if (!r.ok) assertManifestError(r.error, src);
        else assert.ok(manifestSchema.safeParse(r.value).success);
      }),
      { numRuns: 3000, examples: [[DEEPEST, 'manifest.json']] },
    );
  });

  it('accepts generated valid manifests, fills the defaults and round-trips', () => {
    fc.assert(
      fc.property(manifestArb, (m) => {
        const r = parseManifestCounted(JSON.stringify(m, null, 2));
        assert.ok(r.ok, r.ok ? '' : r.error);
        const doc = m as Record<string, Json>;
        const v = r.value;
        assert.equal(v.id, doc.id);
        assert.deepEqual(v.scoring.command, (doc.scoring as Record<string, Json>).command);
        assert.equal(v.time_limit_s, doc.time_limit_s ?? 8 * 3600);
        assert.equal(v.scoring.output_limit_bytes, (doc.scoring as Record<string, Json>).output_limit_bytes ?? 1024 * 1024);
        assert.equal(v.hardware.gpus, (doc.hardware as Record<string, Json> | undefined)?.gpus ?? 0);
        assert.equal(v.pauses_allowed, doc.pauses_allowed ?? false);
        // What was given comes back unchanged; parsing what came out gives it again.
        for (const { path, value } of leaves(m)) {
          let got: unknown = v;
          for (const key of path) got = (got as Record<string, unknown>)[key as string];
          assert.deepEqual(got, value, `field ${dotted(path)} changed`);
        }
        const again = parseManifestCounted(JSON.stringify(v));
        assert.ok(again.ok);
        assert.deepEqual(again.value, v);
      }),
      { numRuns: 1500 },
    );
  });

  it('rejects a valid manifest with a required field deleted, naming that field (optional ones get defaults)', () => {
    fc.assert(
      fc.property(manifestArb, fc.nat(), (m, pick) => {
        const keys = nodes(m).filter(({ path }) => typeof path[path.length - 1] === 'string');
        const { path } = keys[pick % keys.length]!;
        const r = parseManifestCounted(JSON.stringify(deleteAt(m, path)));
        if (MANIFEST_OPTIONAL.has(dotted(path))) {
          assert.ok(r.ok, r.ok ? '' : r.error);
        } else {
          assert.ok(!r.ok, `deleting ${dotted(path)} was accepted`);
          assertManifestError(r.error, 'manifest.json');
          assert.ok(r.error.includes(`${dotted(path)}: `), `the error does not name ${dotted(path)}: ${r.error}`);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('rejects a field of the wrong type, an infinite number, a very deep value or an unknown key, naming where', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('type' as const), pick: fc.nat(), which: fc.nat() }),
      fc.record({ kind: fc.constant('huge' as const), pick: fc.nat(), negative: fc.boolean() }),
      fc.record({ kind: fc.constant('deep' as const), pick: fc.nat(), depth: fc.integer({ min: 2, max: 5_000 }) }),
      fc.record({
        kind: fc.constant('unknown' as const),
        where: fc.constantFrom<Path>([], ['scoring']),
        key: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
        value: fc.jsonValue({ maxDepth: 2 }),
      }),
    );
    fc.assert(
      fc.property(manifestArb, mutation, (m, mut) => {
        const all = nodes(m);
        let text: string;
        let where: string;
        if (mut.kind === 'unknown') {
          const parent = mut.where.reduce<Json>((n, k) => (n as Record<string, Json>)[k as string] as Json, m) as Record<string, Json>;
          fc.pre(!Object.prototype.hasOwnProperty.call(parent, mut.key) && mut.key !== '__proto__');
          text = JSON.stringify(setAt(m, [...mut.where, mut.key], mut.value as Json));
          where = dotted(mut.where);
        } else if (mut.kind === 'huge') {
          const numbers = all.filter(({ value }) => typeof value === 'number');
          const { path } = numbers[mut.pick % numbers.length]!;
          text = withHuge(setAt(m, path, HUGE), mut.negative);
          where = dotted(path);
        } else {
          const { path, value } = all[mut.pick % all.length]!;
          text = mut.kind === 'deep' ? withDeep(m, path, mut.depth) : JSON.stringify(setAt(m, path, wrongTypeFor(value, mut.which)));
          where = dotted(path);
        }
        const r = parseManifestCounted(text);
        assert.ok(!r.ok, `the mutation (${mut.kind} at ${where}) was accepted: ${text.slice(0, 300)}`);
        assertManifestError(r.error, 'manifest.json');
        assert.ok(namesPath(r.error, where), `the error does not name ${where}: ${r.error}`);
        if (mut.kind === 'unknown') assert.match(r.error, /unknown fields? "/);
      }),
      { numRuns: 2000 },
    );
  });

  it('checks lengths and paths of long, unicode and tricky strings exactly as documented', () => {
    const field = fc.constantFrom('title', 'version', 'id', 'instructions', 'solution', 'command', 'gpu_model');
    const text = fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }),
      fc.integer({ min: 1, max: 50_000 }).map((n) => 'é'.repeat(n)),
      fc.constantFrom('..', 'a/../b', '/etc/passwd', './x', 'x/..', '\u0000', '\ud800', '🙂'.repeat(101), 'A', 'a'.repeat(64), 'a'.repeat(65)),
    );
    const base = viaJson({
      id: 'demo',
      title: 'Demo',
      version: '1',
      instructions: 'instructions.md',
      solution: 'solution',
      scoring: { command: ['{python}', 'score.py'], direction: 'lower', aggregation: 'best', starting_score: 6, reference_score: 2, timeout_s: 60 },
      hardware: { gpu_model: 'H100' },
    }) as Json;
    const paths: Record<string, Path> = {
      title: ['title'],
      version: ['version'],
      id: ['id'],
      instructions: ['instructions'],
      solution: ['solution'],
      command: ['scoring', 'command', 1],
      gpu_model: ['hardware', 'gpu_model'],
    };
    const relativeOk = (s: string) => s.length >= 1 && !s.startsWith('/') && !s.split('/').includes('..');
    const expectOk: Record<string, (s: string) => boolean> = {
      // Lengths count code points, in zod as in the runner's Python.
      title: (s) => [...s].length >= 1 && [...s].length <= 200,
      version: (s) => [...s].length >= 1 && [...s].length <= 40,
      id: (s) => /^[a-z0-9][a-z0-9-]{0,63}$/.test(s),
      instructions: relativeOk,
      solution: relativeOk,
      command: (s) => s.length >= 1,
      gpu_model: (s) => s.length >= 1,
    };
    fc.assert(
      fc.property(field, text, (f, s) => {
        const r = parseManifestCounted(JSON.stringify(setAt(base, paths[f]!, s)));
        if (expectOk[f]!(s)) {
          assert.ok(r.ok, r.ok ? '' : r.error);
          let got: unknown = r.value;
          for (const key of paths[f]!) got = (got as Record<string, unknown>)[key as string];
          assert.equal(got, s);
        } else {
          assert.ok(!r.ok, `${f} = ${JSON.stringify(s).slice(0, 80)} was accepted`);
          assertManifestError(r.error, 'manifest.json');
          assert.ok(r.error.includes(`${dotted(paths[f]!)}: `), r.error);
        }
      }),
      { numRuns: 1500 },
    );
  });

  after(() => {
    recordFigure({
      test: 'Property: environment manifests',
      proves:
        'parseManifest never throws; it accepts every generated valid manifest (defaults filled, round trip exact) and rejects every mutation with an error naming the file and the field path.',
      inputsTried: tried.get(P.manifest) ?? 0,
      parser: P.manifest,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Session profiles

const hostArb = fc.stringMatching(/^[A-Za-z0-9._:\-[\]%]{1,60}$/);
const userArb = fc.stringMatching(/^[A-Za-z0-9._][A-Za-z0-9._-]{0,30}$/);
const fingerprintArb = fc.stringMatching(/^[A-Za-z0-9+/]{43}$/).map((s) => `SHA256:${s}`);
const portArb = fc.integer({ min: 1, max: 65535 });

const profileArb = fc
  .record(
    {
      name: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => s.length <= 120),
      host: hostArb,
      port: portArb,
      user: userArb,
      host_key_fingerprint: fingerprintArb,
      environment: envId,
      jump: fc.record(
        { host: hostArb, port: portArb, user: userArb, host_key_fingerprint: fingerprintArb },
        { requiredKeys: ['host', 'user', 'host_key_fingerprint'] },
      ),
      identity_file: fc.string({ minLength: 1, maxLength: 80 }),
      protected: fc.boolean(),
      runner_command: fc.string({ minLength: 1, maxLength: 120 }),
    },
    { requiredKeys: ['name', 'host', 'user', 'host_key_fingerprint', 'environment'] },
  )
  .map((p) => viaJson(p) as unknown as Json);

const PROFILE_OPTIONAL = new Set(['port', 'jump', 'jump.port', 'identity_file', 'protected', 'runner_command']);

function parseProfileCounted(text: string, source: string) {
  count(P.profile);
  return parseProfile(text, source);
}

function assertProfileError(error: string, source: string): void {
  assert.ok(error.trim().length > 0, 'the error is empty');
  assert.ok(error.startsWith(`${source} is `), `the error does not name ${source}: ${error}`);
  assert.match(error, /organiser/, `the error does not say to turn to the organiser: ${error}`);
}

describe('property: session profiles (parseProfile)', () => {
  const source = fc.constantFrom('profile.json', 'C:\\Users\\me\\Downloads\\vm-7.rebench.json', '/home/p/study profile.json');

  it('never throws on arbitrary text; every rejection names the file and points to the organiser', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          { weight: 20, arbitrary: anyOrDeepText },
          { weight: 1, arbitrary: fc.integer({ min: 64 * 1024 + 1, max: 400_000 }).map((n) => ' '.repeat(n)) },
        ),
        source,
        (text, src) => {
          const r = parseProfileCounted(text, src);
          if (!r.ok) assertProfileError(r.error, src);
          if (text.length > 64 * 1024) assert.ok(!r.ok && /small JSON file/.test(r.error));
        },
      ),
      { numRuns: 3000, examples: [[DEEPEST.slice(0, 30_000) + DEEPEST.slice(-30_000), 'profile.json']] },
    );
  });

  it('accepts generated valid profiles and round-trips them', () => {
    fc.assert(
      fc.property(profileArb, (p) => {
        const r = parseProfileCounted(JSON.stringify(p), 'p.json');
        assert.ok(r.ok, r.ok ? '' : r.error);
        const doc = p as Record<string, Json>;
        assert.equal(r.value.port, doc.port ?? 22);
        assert.equal(r.value.protected, doc.protected ?? false);
        for (const { path, value } of leaves(p)) {
          let got: unknown = r.value;
          for (const key of path) got = (got as Record<string, unknown>)[key as string];
          assert.deepEqual(got, value, `field ${dotted(path)} changed`);
        }
        const again = parseProfileCounted(JSON.stringify(r.value), 'p.json');
        assert.ok(again.ok);
        assert.deepEqual(again.value, r.value);
      }),
      { numRuns: 1500 },
    );
  });

  it('rejects deleted required fields, wrong types, infinite ports, deep values and unknown keys, naming the field', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('type' as const), pick: fc.nat(), which: fc.nat() }),
      fc.record({ kind: fc.constant('huge' as const), negative: fc.boolean() }),
      fc.record({ kind: fc.constant('deep' as const), pick: fc.nat(), depth: fc.integer({ min: 2, max: 5_000 }) }),
      fc.record({
        kind: fc.constant('unknown' as const),
        key: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
        value: fc.jsonValue({ maxDepth: 2 }),
      }),
    );
    fc.assert(
      fc.property(profileArb, mutation, (p, mut) => {
        const all = nodes(p);
        let text: string;
        let where: string;
        if (mut.kind === 'delete') {
          const keys = all.filter(({ path }) => typeof path[path.length - 1] === 'string');
          const { path } = keys[mut.pick % keys.length]!;
          text = JSON.stringify(deleteAt(p, path));
          where = dotted(path);
          if (PROFILE_OPTIONAL.has(where)) {
            const r = parseProfileCounted(text, 'p.json');
            assert.ok(r.ok, r.ok ? '' : r.error);
            return;
          }
        } else if (mut.kind === 'unknown') {
          fc.pre(!Object.prototype.hasOwnProperty.call(p, mut.key) && mut.key !== '__proto__');
          text = JSON.stringify(setAt(p, [mut.key], mut.value as Json));
          where = '(top level)';
        } else if (mut.kind === 'huge') {
          text = withHuge(setAt(p, ['port'], HUGE), mut.negative);
          where = 'port';
        } else {
          const { path, value } = all[mut.pick % all.length]!;
          text = mut.kind === 'deep' ? withDeep(p, path, mut.depth) : JSON.stringify(setAt(p, path, wrongTypeFor(value, mut.which)));
          where = dotted(path);
        }
        const r = parseProfileCounted(text, 'p.json');
        assert.ok(!r.ok, `the mutation (${mut.kind} at ${where}) was accepted`);
        assertProfileError(r.error, 'p.json');
        assert.ok(namesPath(r.error, where), `the error does not name ${where}: ${r.error}`);
      }),
      { numRuns: 2000 },
    );
  });

  after(() => {
    recordFigure({
      test: 'Property: session profiles',
      proves:
        'parseProfile never throws; generated valid profiles are accepted and round-trip; every rejection names the file and the field and sends the participant to the organiser.',
      inputsTried: tried.get(P.profile) ?? 0,
      parser: P.profile,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Runner replies and stream lines

const entryArb: fc.Arbitrary<ScoreLogEntry> = fc.record({
  index: fc.nat(),
  job_id: fc.string({ minLength: 1, maxLength: 40 }),
  kind: fc.constantFrom('score' as const, 'final' as const),
  started_at: isoTime,
  ended_at: isoTime,
  elapsed_s: nonNegative,
  score: fc.option(finite, { nil: null }),
  message: fc.string({ unit: 'binary', maxLength: 200 }),
  exit_code: fc.option(fc.integer(), { nil: null }),
  signal: fc.option(fc.constantFrom('SIGKILL', 'SIGTERM', 'signal 99'), { nil: null }),
  timed_out: fc.boolean(),
  killed: fc.boolean(),
  duration_s: nonNegative,
  solution_hash: fc.string({ minLength: 1, maxLength: 80 }),
  counts: fc.boolean(),
  output_bytes: fc.nat(),
  output_truncated: fc.boolean(),
  prev_hash: hex64,
  hash: hex64,
});

const jobArb = fc.record({
  job_id: fc.string({ minLength: 1, maxLength: 40 }),
  kind: fc.constantFrom('score' as const, 'final' as const),
  started_at: isoTime,
  pid: fc.option(fc.integer({ min: 1, max: 4_194_304 }), { nil: null }),
});

const statusArb: fc.Arbitrary<RunnerStatus> = fc.record({
  runner_version: fc.string({ maxLength: 10 }),
  mode: fc.constantFrom('protected' as const, 'unprotected' as const),
  environment: fc.record({
    id: envId,
    title: fc.string({ maxLength: 60 }),
    version: fc.string({ maxLength: 20 }),
    direction: fc.constantFrom('higher' as const, 'lower' as const),
    aggregation: fc.constantFrom('best' as const, 'last' as const),
    starting_score: finite,
    reference_score: finite,
    time_limit_s: fc.integer({ min: 60, max: 604_800 }),
    pauses_allowed: fc.boolean(),
    instructions_before_start: fc.boolean(),
    gpus: fc.integer({ min: 0, max: 64 }),
    gpu_model: fc.option(fc.string({ maxLength: 30 }), { nil: null }),
    min_free_disk_gb: nonNegative,
    scoring_timeout_s: fc.integer({ min: 1, max: 86_400 }),
  }),
  state: fc.constantFrom('not_started' as const, 'running' as const, 'paused' as const, 'ended' as const),
  started_at: fc.option(isoTime, { nil: null }),
  deadline: fc.option(isoTime, { nil: null }),
  ended_at: fc.option(isoTime, { nil: null }),
  now: isoTime,
  seconds_left: fc.option(finite, { nil: null }),
  elapsed_s: nonNegative,
  paused_s: nonNegative,
  job: fc.option(jobArb, { nil: null }),
  entries: fc.nat(),
  counted: fc.option(fc.record({ index: fc.integer(), score: finite, normalized: finite }), { nil: null }),
  log_intact: fc.boolean(),
  solution_dir: fc.string({ maxLength: 80 }),
});

const verifyArb = fc.record({
  intact: fc.boolean(),
  entries: fc.nat(),
  first_bad: fc.option(fc.integer(), { nil: null }),
  reason: fc.option(fc.string({ maxLength: 100 }), { nil: null }),
});

const runnerErrorArb = fc.record(
  {
    code: fc.constantFrom('internal' as const, 'usage' as const, 'busy' as const, 'refused' as const, 'environment' as const, 'integrity' as const),
    message: fc.string({ unit: 'binary', maxLength: 120 }),
    job: jobArb,
  },
  { requiredKeys: ['code', 'message'] },
);

/** Errors as the runner writes them: always with a message (empty ones are tried on parseRunnerJson itself). */
const runnerErrorWithMessageArb = runnerErrorArb.filter((e) => e.message.trim() !== '');

const streamEventArb: fc.Arbitrary<StreamEvent> = fc.oneof(
  fc.record({ type: fc.constant('job' as const), job_id: fc.string({ maxLength: 40 }), started_at: isoTime, output_offset: fc.nat() }),
  fc.record({ type: fc.constant('output' as const), text: fc.string({ unit: 'binary', maxLength: 200 }), offset: fc.nat() }),
  fc.record({ type: fc.constant('entry' as const), entry: entryArb }),
  fc.record({ type: fc.constant('error' as const), error: runnerErrorArb }),
);

/** Stream events as RunnerClient meets them. */
const clientStreamEventArb: fc.Arbitrary<StreamEvent> = streamEventArb.filter((e) => e.type !== 'error' || e.error.message.trim() !== '');

interface ReplyKind {
  what: string;
  /** How fast-check prints it in a counterexample. */
  [fc.toStringMethod]?: () => string;
  schema: z.ZodType<unknown>;
  arb: fc.Arbitrary<Json>;
}

const replyKinds: ReplyKind[] = (
  [
    { what: 'status', schema: statusSchema, arb: statusArb.map((s) => viaJson(s) as unknown as Json) },
    { what: 'verify', schema: verifySchema, arb: verifyArb.map((s) => viaJson(s) as unknown as Json) },
    { what: 'log', schema: logReplySchema, arb: fc.array(entryArb, { maxLength: 4 }).map((entries) => viaJson({ entries }) as unknown as Json) },
    { what: 'score stream', schema: streamEventSchema, arb: streamEventArb.map((e) => viaJson(e) as unknown as Json) },
  ] as ReplyKind[]
).map((k) => ({ ...k, [fc.toStringMethod]: () => k.what }));

function parseRunnerCounted(kind: ReplyKind, text: string) {
  count(P.runner);
  return parseRunnerJson(kind.schema, text, kind.what);
}

/** For a runner error reply (`{"error": {...}}`), the error parseRunnerJson documents: its message, or a fallback. */
function errorReplyText(raw: unknown, what: string): string | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const asError = runnerErrorSchema.safeParse((raw as { error?: unknown }).error);
  if (!asError.success) return undefined;
  const { code, message } = asError.data;
  return message.trim() ? message : `The runner's ${what} command failed (${code}) without saying why; Show Log has the details.`;
}

/** The documented kinds of rejection: not JSON, the runner's own error, or the wrong shape with a path. */
function assertRunnerRejection(error: string, what: string, text: string): void {
  assert.ok(error.trim().length > 0, `an empty error for ${JSON.stringify(text).slice(0, 200)}`);
  assert.ok(wellFormed(error), 'the error holds a lone surrogate');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    assert.ok(error.startsWith(`The runner's ${what} reply is not JSON: "`), error);
    // At most 201 characters of the reply are quoted, each escaped to at most 6.
    assert.ok(error.length <= `The runner's ${what} reply is not JSON: `.length + 2 + 6 * 201, 'the quoted reply is not shortened');
    return;
  }
  const asReply = errorReplyText(raw, what);
  if (asReply !== undefined) {
    assert.equal(error, asReply);
    return;
  }
  assert.match(error, new RegExp(`^The runner's ${escapeRegExp(what)} reply has an unexpected shape: \\S.*: \\S`, 's'));
}

describe('property: runner replies and stream lines (parseRunnerJson)', () => {
  const kind = fc.constantFrom(...replyKinds);

  it('never throws on arbitrary text and every rejection is one of the documented clear errors', () => {
    fc.assert(
      fc.property(
        kind,
        fc.oneof({ weight: 8, arbitrary: anyOrDeepText }, { weight: 1, arbitrary: runnerErrorArb.map((error) => JSON.stringify({ error })) }),
        (k, text) => {
          const r = parseRunnerCounted(k, text);
          if (r.ok) assert.ok(k.schema.safeParse(JSON.parse(text)).success);
          else assertRunnerRejection(r.error, k.what, text);
        },
      ),
      { numRuns: 4000, examples: replyKinds.map((k) => [k, DEEPEST] as [ReplyKind, string]) },
    );
  });

  it('accepts every generated valid reply exactly, and ignores unknown keys a newer runner may add', () => {
    fc.assert(
      fc.property(
        kind.chain((k) => fc.tuple(fc.constant(k), k.arb)),
        fc.option(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }))),
        ([k, doc], extra) => {
          const r = parseRunnerCounted(k, JSON.stringify(doc));
          const asReply = errorReplyText(doc, k.what);
          if (asReply !== undefined) {
            // A stream's error event has the shape of an error reply, and parseRunnerJson reports it as one.
            assert.ok(!r.ok);
            assert.equal(r.error, asReply);
            return;
          }
          assert.ok(r.ok, r.ok ? '' : r.error);
          assert.deepEqual(r.value, doc);
          if (extra && !Object.prototype.hasOwnProperty.call(doc, extra[0]) && extra[0] !== '__proto__') {
            const widened = parseRunnerCounted(k, JSON.stringify({ ...(doc as object), [extra[0]]: extra[1] }));
            assert.ok(widened.ok, widened.ok ? '' : widened.error);
            assert.deepEqual(widened.value, doc);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('rejects mutated replies (deleted field, wrong type, infinite number, deep value), naming the field', () => {
    const mutation = fc.record({
      kind: fc.constantFrom('delete', 'type', 'huge', 'deep'),
      pick: fc.nat(),
      which: fc.nat(),
      depth: fc.integer({ min: 2, max: 3_000 }),
    });
    fc.assert(
      fc.property(
        kind.chain((k) => fc.tuple(fc.constant(k), k.arb)),
        mutation,
        ([k, doc], mut) => {
          let candidates = nodes(doc);
          if (mut.kind === 'delete') {
            // Every object key in these replies is required; the optional `job` of an error event is left out.
            candidates = candidates.filter(({ path }) => typeof path[path.length - 1] === 'string' && path[path.length - 1] !== 'job');
          }
          if (mut.kind === 'huge') candidates = candidates.filter(({ value }) => typeof value === 'number');
          fc.pre(candidates.length > 0);
          const { path, value } = candidates[mut.pick % candidates.length]!;
          const text =
            mut.kind === 'delete'
              ? JSON.stringify(deleteAt(doc, path))
              : mut.kind === 'huge'
                ? withHuge(setAt(doc, path, HUGE), mut.which % 2 === 1)
                : mut.kind === 'deep'
                  ? withDeep(doc, path, mut.depth)
                  : JSON.stringify(setAt(doc, path, wrongTypeFor(value, mut.which)));
          const r = parseRunnerCounted(k, text);
          assert.ok(!r.ok, `the mutation (${mut.kind} at ${dotted(path)}) was accepted`);
          assertRunnerRejection(r.error, k.what, text);
          const asReply = errorReplyText(JSON.parse(text), k.what);
          assert.ok(namesPath(r.error, dotted(path)) || r.error === asReply, `the error does not name ${dotted(path)}: ${r.error}`);
        },
      ),
      { numRuns: 2500 },
    );
  });

  after(() => {
    recordFigure({
      test: 'Property: runner replies and stream lines',
      proves:
        'parseRunnerJson never throws on runner output; valid status, verify, log and stream-event documents parse exactly (unknown keys ignored) and every other reply gets a clear, non-empty error naming the reply and the field.',
      inputsTried: tried.get(P.runner) ?? 0,
      parser: P.runner,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// LineSplitter and RunnerClient's handling of the runner's stream

/** Cuts a text at the given positions (taken modulo its length), keeping every character. */
function chunk(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => (text.length ? c % (text.length + 1) : 0)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const p of points) {
    out.push(text.slice(from, p));
    from = p;
  }
  out.push(text.slice(from));
  return out;
}

describe('property: LineSplitter', () => {
  it('yields the same lines however the text is cut into chunks', () => {
    const unit = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('\n', '\r\n', '\r', ' ', '\t', '\u00a0', '\u2028', '\ufeff') },
      { weight: 5, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }) },
      { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('\n', ' '), minLength: 1, maxLength: 6 }) },
    );
    fc.assert(
      fc.property(
        fc.array(unit, { maxLength: 40 }).map((u) => u.join('')),
        fc.array(fc.nat(), { maxLength: 30 }),
        (text, cuts) => {
          count(P.splitter);
          const expected = text
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l !== '');
          const whole: string[] = [];
          const w = new LineSplitter((l) => whole.push(l));
          w.push(text);
          w.end();
          const pieces: string[] = [];
          const s = new LineSplitter((l) => pieces.push(l));
          for (const c of chunk(text, cuts)) s.push(c);
          s.end();
          assert.deepEqual(whole, expected);
          assert.deepEqual(pieces, expected);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('gives each character separately the same lines too (one-character chunks)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant('\n'), fc.string({ unit: 'binary', maxLength: 8 })), { maxLength: 30 }).map((u) => u.join('')),
        (text) => {
          count(P.splitter);
          const lines: string[] = [];
          const s = new LineSplitter((l) => lines.push(l));
          for (const c of text) s.push(c);
          s.end();
          assert.deepEqual(
            lines,
            text
              .split('\n')
              .map((l) => l.trim())
              .filter((l) => l !== ''),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  after(() => {
    recordFigure({
      test: 'Property: LineSplitter chunking',
      proves: 'LineSplitter yields exactly the lines of the whole text, whatever the chunk boundaries (surrogate pairs and CRLF split included).',
      inputsTried: tried.get(P.splitter) ?? 0,
      parser: P.splitter,
    });
  });
});

/**
 * A Target that answers the runner's commands with scripted output, delivered in the given chunks:
 * the client's line handling sees exactly what a real channel could deliver, and nothing else changes.
 */
class ReplayTarget implements Target {
  readonly kind = 'ssh' as const;
  readonly label = 'replay@vm:22';
  readonly state: ConnectionState = { kind: 'connected' };
  constructor(private readonly answer: (command: string) => { chunks: string[]; code: number | null }) {}
  async home(): Promise<string> {
    return '/home/participant';
  }
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const { chunks, code } = this.answer(command);
    let stdout = '';
    for (const c of chunks) {
      stdout += c;
      options.onStdout?.(c);
      await Promise.resolve(); // chunks arrive on separate turns, as from a socket
    }
    return { code, signal: code === null ? 'SIGHUP' : null, stdout, stderr: '' };
  }
  async readFile(p: string): Promise<Buffer> {
    throw new Error(`no file ${p}`);
  }
  async writeFile(): Promise<void> {
    throw new Error('read-only');
  }
  onStateChange(): { dispose(): void } {
    return { dispose() {} };
  }
  dispose(): void {}
}

const FIXED_STATUS = viaJson({
  runner_version: '1.1.0',
  mode: 'protected',
  environment: {
    id: 'demo-fast-function',
    title: 'Demo',
    version: '1.0.0',
    direction: 'lower',
    aggregation: 'best',
    starting_score: 6.3,
    reference_score: 2,
    time_limit_s: 28800,
    pauses_allowed: false,
    instructions_before_start: false,
    gpus: 0,
    gpu_model: null,
    min_free_disk_gb: 0.1,
    scoring_timeout_s: 120,
  },
  state: 'running',
  started_at: '2026-01-01T00:00:00.000Z',
  deadline: '2026-01-01T08:00:00.000Z',
  ended_at: null,
  now: '2026-01-01T01:00:00.000Z',
  seconds_left: 25200,
  elapsed_s: 3600,
  paused_s: 0,
  job: null,
  entries: 0,
  counted: null,
  log_intact: true,
  solution_dir: '/home/participant/solution',
});

interface CollectingLogger extends Logger {
  warnings: string[];
}
function collectingLogger(): CollectingLogger {
  const warnings: string[] = [];
  return { warnings, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
}

async function preparedClient(answer: (command: string) => { chunks: string[]; code: number | null }, logger: Logger): Promise<RunnerClient> {
  let preparing = true;
  const target = new ReplayTarget((command) => {
    if (!preparing) return answer(command);
    if (command === 'rebench-runner --version') return { chunks: ['1.1.0\n'], code: 0 };
    if (command === 'rebench-runner status --json') return { chunks: [`${JSON.stringify(FIXED_STATUS)}\n`], code: 0 };
    throw new Error(`unexpected command while preparing: ${command}`);
  });
  const client = new RunnerClient({
    target,
    environmentId: 'demo-fast-function',
    runnerSource: '/nonexistent/runner.pyz',
    environmentSource: '/nonexistent/environment',
    protectedMode: true,
    protectedRunnerCommand: 'rebench-runner',
    // The one-shot path (the client's fallback when the runner serves no channel) reads these replies.
    channel: false,
    logger,
  });
  await client.ensureRunnerSetUp();
  preparing = false;
  return client;
}

/** One line of a stream: a valid event, a bare error reply, or garbage that is neither. */
type StreamLine = { kind: 'event'; event: StreamEvent } | { kind: 'bare-error'; error: z.infer<typeof runnerErrorSchema> } | { kind: 'garbage'; text: string };

const garbageLine = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 120 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    streamEventArb
      .chain((e) => fc.tuple(fc.constant(viaJson(e) as unknown as Json), fc.nat(), fc.nat()))
      .map(([e, pick, which]) => {
        const all = nodes(e);
        const { path, value } = all[pick % all.length]!;
        return JSON.stringify(setAt(e, path, wrongTypeFor(value, which)));
      }),
    fc.constantFrom('Traceback (most recent call last):', '{"type": "output", "text": "unterminated', 'NaN', '{"type":"entry"}', '\u0000\u0001\ufffd'),
  )
  .map((t) => t.replace(/\n/g, ' '))
  .filter((t) => {
    let raw: unknown;
    try {
      raw = JSON.parse(t.trim());
    } catch {
      return true;
    }
    return !streamEventSchema.safeParse(raw).success && !runnerErrorSchema.safeParse((raw as { error?: unknown } | null)?.error).success;
  });

const streamLineArb: fc.Arbitrary<StreamLine> = fc.oneof(
  { weight: 6, arbitrary: clientStreamEventArb.map((event) => ({ kind: 'event' as const, event: viaJson(event) })) },
  { weight: 1, arbitrary: runnerErrorWithMessageArb.map((error) => ({ kind: 'bare-error' as const, error: viaJson(error) })) },
  { weight: 3, arbitrary: garbageLine.map((text) => ({ kind: 'garbage' as const, text })) },
);

function lineText(line: StreamLine): string {
  if (line.kind === 'event') return JSON.stringify(line.event);
  if (line.kind === 'bare-error') return JSON.stringify({ error: line.error });
  return line.text;
}

describe("property: RunnerClient's handling of the runner's stream and replies", () => {
  it('follows any stream, cut anywhere: output in order, the last entry or error wins, garbage is logged and skipped', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(streamLineArb, { maxLength: 14 }),
        fc.constantFrom('\n', '\r\n'),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.constantFrom<number | null>(0, 1, 3, 6, null),
        fc.nat({ max: 1000 }),
        async (lines, eol, cuts, code, fromOffset) => {
          count(P.client);
          const text = lines.map(lineText).join(eol) + (lines.length ? eol : '');
          const logger = collectingLogger();
          const client = await preparedClient((command) => {
            assert.match(command, /^rebench-runner attach /);
            return { chunks: chunk(text, cuts), code };
          }, logger);

          // What the documented stream rules say should happen.
          const outputs: [string, number][] = [];
          let offset = fromOffset;
          let jobId = 'j-1';
          let lastEntry: ScoreLogEntry | undefined;
          let lastError: { message: string } | undefined;
          let garbage = 0;
          for (const l of lines) {
            if (l.kind === 'garbage') {
              if (l.text.trim() !== '') garbage++;
            } else if (l.kind === 'bare-error') lastError = l.error;
            else if (l.event.type === 'job') {
              jobId = l.event.job_id;
              offset = l.event.output_offset;
            } else if (l.event.type === 'output') {
              outputs.push([l.event.text, l.event.offset]);
              offset = l.event.offset;
            } else if (l.event.type === 'entry') lastEntry = l.event.entry;
            else lastError = l.event.error;
          }

          const seen: [string, number][] = [];
          const jobs: string[] = [];
          let outcome: { entry?: ScoreLogEntry; error?: unknown };
          try {
            outcome = { entry: await client.attach('j-1', fromOffset, { onOutput: (t, o) => seen.push([t, o]), onJob: (j) => jobs.push(j.job_id) }) };
          } catch (e) {
            outcome = { error: e };
          }
          assert.deepEqual(seen, outputs);
          assert.equal(jobs.length, lines.filter((l) => l.kind === 'event' && l.event.type === 'job').length);
          assert.equal(logger.warnings.length, garbage, `warnings: ${logger.warnings.join(' | ')}`);
          for (const w of logger.warnings) assert.ok(w.length <= 300 && w.startsWith("Ignored a line from the runner's attach stream"));
          if (lastEntry) {
            assert.deepEqual(outcome.entry, lastEntry);
            return;
          }
          const error = outcome.error;
          assert.ok(error instanceof SessionError, `not a SessionError: ${String(error)}`);
          assert.ok(error.message.trim().length > 0, 'an empty error message');
          if (lastError) {
            assert.ok(error instanceof RunnerCommandError);
            assert.equal(error.message, lastError.message);
          } else if (code === null) {
            assert.ok(error instanceof JobInterruptedError);
            assert.equal(error.outputOffset, offset);
            assert.equal(error.jobId, jobId);
          } else {
            assert.match(error.message, /The runner's attach command exited with \d+/);
          }
        },
      ),
      { numRuns: 600 },
    );
  });

  it('turns any reply to status, log or verify into its value or a SessionError with a clear message', async () => {
    const replies = fc.oneof(
      anyText,
      statusArb.map((s) => JSON.stringify(s)),
      fc.array(entryArb, { maxLength: 3 }).map((entries) => JSON.stringify({ entries })),
      verifyArb.map((v) => JSON.stringify(v)),
      runnerErrorWithMessageArb.map((error) => JSON.stringify({ error })),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('status', 'log', 'verify'),
        replies,
        fc.constantFrom<number | null>(0, 0, 1, 2, 6, 127, null),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (command, reply, code, cuts) => {
          count(P.client);
          const client = await preparedClient(() => ({ chunks: chunk(reply, cuts), code }), collectingLogger());
          const call = command === 'status' ? () => client.status() : command === 'log' ? () => client.log(0) : () => client.verify();
          const schema: z.ZodType<unknown> = command === 'status' ? statusSchema : command === 'log' ? logReplySchema : verifySchema;
          let raw: unknown;
          try {
            raw = JSON.parse(reply);
          } catch {
            raw = undefined;
          }
          const accepted = (code === 0 || (command === 'verify' && code === 6)) && errorReplyText(raw, command) === undefined && schema.safeParse(raw).success;
          try {
            await call();
            assert.ok(accepted, `accepted ${reply.slice(0, 200)} with exit ${code}`);
          } catch (e) {
            assert.ok(!accepted, `rejected a valid reply: ${String(e)}`);
            assert.ok(e instanceof SessionError, `not a SessionError: ${String(e)}`);
            assert.ok(e.message.trim().length > 0, 'an empty error message');
            assert.ok(wellFormed(e.message));
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  after(() => {
    recordFigure({
      test: "Property: RunnerClient's stream and reply handling",
      proves:
        "However the runner's output is cut and whatever lines it holds, RunnerClient passes on the output in order, returns the last entry or throws the runner's error or a clear SessionError, and logs each line that is not an event.",
      inputsTried: tried.get(P.client) ?? 0,
      parser: P.client,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Webview messages

const snapshotArb: fc.Arbitrary<Snapshot> = fc.record({
  connection: fc.record({
    kind: fc.constantFrom('disconnected' as const, 'connecting' as const, 'connected' as const, 'reconnecting' as const, 'failed' as const),
    target: fc.option(fc.string({ maxLength: 40 }), { nil: null }),
    detail: fc.string({ unit: 'binary', maxLength: 80 }),
  }),
  environment: fc.option(
    fc.record({
      id: envId,
      title: fc.string({ unit: 'binary', maxLength: 60 }),
      version: fc.string({ maxLength: 20 }),
      direction: fc.constantFrom('higher' as const, 'lower' as const),
      aggregation: fc.constantFrom('best' as const, 'last' as const),
      startingScore: finite,
      referenceScore: finite,
      pausesAllowed: fc.boolean(),
      visible: fc.constantFrom('all' as const, 'none' as const, 'validation' as const),
    }),
    { nil: null },
  ),
  session: fc.option(
    fc.record({
      state: fc.constantFrom('not_started' as const, 'running' as const, 'paused' as const, 'ended' as const),
      deadlineLocalMs: fc.option(finite, { nil: null }),
      secondsLeft: fc.option(finite, { nil: null }),
      deadlineIso: fc.option(isoTime, { nil: null }),
      startedIso: fc.option(isoTime, { nil: null }),
      timeLimitS: finite,
      clockOffsetMs: finite,
      mode: fc.constantFrom('protected' as const, 'unprotected' as const),
      solutionDir: fc.string({ maxLength: 60 }),
    }),
    { nil: null },
  ),
  job: fc.option(fc.record({ jobId: fc.string({ maxLength: 40 }), startedIso: isoTime, output: fc.string({ unit: 'binary', maxLength: 300 }) }), { nil: null }),
  entries: fc.array(entryArb, { maxLength: 4 }),
  countedIndex: fc.option(fc.integer(), { nil: null }),
  logIntact: fc.boolean(),
  logProblem: fc.option(fc.string({ maxLength: 80 }), { nil: null }),
  scoreDisabledReason: fc.option(fc.string({ maxLength: 80 }), { nil: null }),
  countdown: fc.record({ warningS: fc.nat(), criticalS: fc.nat() }),
});

const hostMessageArb: fc.Arbitrary<HostMessage> = fc.oneof(
  fc.record({ type: fc.constant('snapshot' as const), snapshot: snapshotArb }),
  fc.record({ type: fc.constant('jobOutput' as const), jobId: fc.string({ maxLength: 40 }), text: fc.string({ unit: 'binary', maxLength: 400 }) }),
  fc.record(
    { type: fc.constant('reply' as const), id: fc.integer(), ok: fc.boolean(), error: fc.string({ unit: 'binary', maxLength: 80 }) },
    { requiredKeys: ['type', 'id', 'ok'] },
  ),
);

const viewMessageArb: fc.Arbitrary<ViewMessage> = fc.oneof(
  fc.constant({ type: 'ready' as const }),
  fc.record({ type: fc.constant('request' as const), id: fc.nat(), action: fc.constantFrom(...viewActions) }),
);

const directions: { name: string; schema: z.ZodType<unknown>; arb: fc.Arbitrary<Json> }[] = (
  [
    { name: 'host → view', schema: hostMessageSchema, arb: hostMessageArb.map((m) => viaJson(m) as unknown as Json) },
    { name: 'view → host', schema: viewMessageSchema, arb: viewMessageArb.map((m) => viaJson(m) as unknown as Json) },
  ] as { name: string; schema: z.ZodType<unknown>; arb: fc.Arbitrary<Json> }[]
).map((d) => ({ ...d, [fc.toStringMethod]: () => d.name }));

function safeParseCounted(schema: z.ZodType<unknown>, value: unknown) {
  count(P.view);
  return schema.safeParse(value);
}

/** What the receiving side logs for a malformed message: one readable line naming the field. */
function assertViewRejection(error: z.ZodError): string {
  const line = formatZodError(error);
  assert.ok(line.trim().length > 0, 'an empty rejection');
  assert.ok(
    error.issues.every((i) => i.message.trim().length > 0),
    'an issue without a message',
  );
  assert.ok(wellFormed(line));
  return line;
}

describe('property: webview messages (both directions)', () => {
  const direction = fc.constantFrom(...directions);

  it('never throws on arbitrary values, including ones JSON cannot carry', () => {
    const value = fc.oneof(
      fc.anything({
        maxDepth: 4,
        withBigInt: true,
        withBoxedValues: true,
        withMap: true,
        withSet: true,
        withNullPrototype: true,
        withTypedArray: true,
        withSparseArray: true,
        withDate: true,
      }),
      fc.jsonValue({ maxDepth: 4 }),
      fc.record(
        {
          type: fc.constantFrom('snapshot', 'jobOutput', 'reply', 'ready', 'request', 'constructor', '__proto__'),
          id: fc.anything({ maxDepth: 1 }),
          snapshot: fc.anything({ maxDepth: 2 }),
          action: fc.string(),
        },
        { requiredKeys: ['type'] },
      ),
      fc.integer({ min: 1, max: 20_000 }).map(nested),
    );
    fc.assert(
      fc.property(direction, value, (d, v) => {
        const r = safeParseCounted(d.schema, v);
        if (!r.success) assertViewRejection(r.error);
      }),
      { numRuns: 4000 },
    );
  });

  it('accepts every generated valid message and round-trips it through postMessage (structured clone) and JSON', () => {
    fc.assert(
      fc.property(
        direction.chain((d) => fc.tuple(fc.constant(d), d.arb)),
        ([d, m]) => {
          const cloned = safeParseCounted(d.schema, structuredClone(m));
          assert.ok(cloned.success, cloned.success ? '' : formatZodError(cloned.error));
          assert.deepEqual(cloned.data, m);
          const json = safeParseCounted(d.schema, JSON.parse(JSON.stringify(m)));
          assert.ok(json.success);
          assert.deepEqual(json.data, m);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('rejects mutated messages (deleted field, wrong type, ±Infinity, deep value), naming the field', () => {
    fc.assert(
      fc.property(
        direction.chain((d) => fc.tuple(fc.constant(d), d.arb)),
        fc.record({ kind: fc.constantFrom('delete', 'type', 'infinity', 'deep'), pick: fc.nat(), which: fc.nat() }),
        ([d, m], mut) => {
          let candidates = nodes(m);
          if (mut.kind === 'delete')
            candidates = candidates.filter(({ path }) => typeof path[path.length - 1] === 'string' && path[path.length - 1] !== 'error');
          if (mut.kind === 'infinity') candidates = candidates.filter(({ value }) => typeof value === 'number');
          fc.pre(candidates.length > 0);
          const { path, value } = candidates[mut.pick % candidates.length]!;
          const mutated =
            mut.kind === 'delete'
              ? deleteAt(m, path)
              : setAt(
                  m,
                  path,
                  mut.kind === 'infinity'
                    ? mut.which % 3 === 0
                      ? NaN
                      : mut.which % 3 === 1
                        ? Infinity
                        : -Infinity
                    : mut.kind === 'deep'
                      ? nested(2 + (mut.which % 2000))
                      : wrongTypeFor(value, mut.which),
                );
          const r = safeParseCounted(d.schema, mutated);
          assert.ok(!r.success, `the mutation (${mut.kind} at ${dotted(path)}) was accepted`);
          const line = assertViewRejection(r.error);
          assert.ok(namesPath(line, dotted(path)), `the rejection does not name ${dotted(path)}: ${line}`);
        },
      ),
      { numRuns: 2500 },
    );
  });

  after(() => {
    recordFigure({
      test: 'Property: webview messages',
      proves:
        'The message schemas of both directions never throw; every generated valid message survives structured clone and JSON; every mutated one is rejected with a readable line naming the field.',
      inputsTried: tried.get(P.view) ?? 0,
      parser: P.view,
    });
  });
});
