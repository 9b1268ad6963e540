import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fingerprintSha256 } from '../../src/core/ssh/hostKey';
import { hostKeyAlgorithmsFor, type HostTrustOptions, type UnknownHostInfo, verifyHostKey } from '../../src/core/ssh/hostTrust';
import { formatKnownHostsLine } from '../../src/core/ssh/knownHosts';

function blob(fill: number): Buffer {
  const t = Buffer.from('ssh-ed25519');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(t.length);
  const body = Buffer.alloc(36, fill);
  body.writeUInt32BE(32, 0);
  return Buffer.concat([head, t, body]);
}
const KEY = blob(1);
const OTHER = blob(2);

describe('verifyHostKey', () => {
  let dir: string;
  let logs: string[];
  let waits: boolean[];
  const base = (extra: Partial<HostTrustOptions> = {}): HostTrustOptions => ({
    host: '10.0.0.5',
    port: 2222,
    label: 'agent@vm:2222',
    knownHostsFiles: [path.join(dir, 'known_hosts')],
    acceptedHostsFile: path.join(dir, 'ext', 'accepted_hosts'),
    interactive: true,
    logger: { info: (m) => logs.push(`info ${m}`), warn: (m) => logs.push(`warn ${m}`), error: (m) => logs.push(`error ${m}`) },
    onUserWait: (w) => waits.push(w),
    ...extra,
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trust-'));
    logs = [];
    waits = [];
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a pinned fingerprint alone decides, whatever known_hosts says', async () => {
    fs.writeFileSync(path.join(dir, 'known_hosts'), `${formatKnownHostsLine('10.0.0.5', 2222, 'ssh-ed25519', OTHER)}\n`);
    assert.deepEqual(await verifyHostKey(base({ pinnedFingerprint: fingerprintSha256(KEY) }), KEY), { ok: true });
    const r = await verifyHostKey(base({ pinnedFingerprint: fingerprintSha256(OTHER) }), KEY);
    assert.ok(!r.ok);
    if (!r.ok) {
      assert.equal(r.error.code, 'host-key-mismatch');
      assert.equal(r.error.retryable, false);
      assert.ok(r.error.message.includes(fingerprintSha256(KEY)) && r.error.message.includes(fingerprintSha256(OTHER)));
      assert.match(r.error.message, /Nothing was sent/);
    }
  });

  it('accepts a key found in known_hosts, and explains a changed one with its file and line', async () => {
    const kh = path.join(dir, 'known_hosts');
    fs.writeFileSync(kh, `# mine\nsomewhere ssh-ed25519 ${KEY.toString('base64')}\n${formatKnownHostsLine('10.0.0.5', 2222, 'ssh-ed25519', OTHER)}\n`);
    const changed = await verifyHostKey(base(), KEY);
    assert.ok(!changed.ok);
    if (!changed.ok) {
      assert.equal(changed.error.code, 'host-key-mismatch');
      assert.match(changed.error.message, /has changed since you last connected/);
      assert.match(changed.error.message, /VM was rebuilt, or that someone is intercepting/);
      assert.ok(changed.error.message.includes(`remove the old line 3 from ${kh}`), changed.error.message);
    }
    assert.deepEqual(await verifyHostKey(base(), OTHER), { ok: true });
  });

  it('refuses a revoked key', async () => {
    fs.writeFileSync(path.join(dir, 'known_hosts'), `@revoked * ssh-ed25519 ${KEY.toString('base64')}\n`);
    const r = await verifyHostKey(base({ confirmUnknownHost: async () => true }), KEY);
    assert.ok(!r.ok && r.error.code === 'host-key-mismatch' && /@revoked/.test(r.error.message));
  });

  it('asks about an unknown key, records it when trusted, and pauses the handshake timer meanwhile', async () => {
    const asked: UnknownHostInfo[] = [];
    const r = await verifyHostKey(base({ confirmUnknownHost: async (info) => (asked.push(info), true) }), KEY);
    assert.deepEqual(r, { ok: true });
    assert.deepEqual(asked, [{ host: '10.0.0.5', port: 2222, keyType: 'ssh-ed25519', fingerprint: fingerprintSha256(KEY), knownKeyTypes: [] }]);
    assert.deepEqual(waits, [true, false]);
    const recorded = fs.readFileSync(path.join(dir, 'ext', 'accepted_hosts'), 'utf8');
    assert.equal(recorded, `${formatKnownHostsLine('10.0.0.5', 2222, 'ssh-ed25519', KEY)}\n`);
    // Next time it is known, without asking.
    assert.deepEqual(await verifyHostKey(base({ confirmUnknownHost: async () => assert.fail('asked again') }), KEY), { ok: true });
  });

  it('refuses an unknown key when the participant declines, when nobody can be asked, or while reconnecting', async () => {
    const declined = await verifyHostKey(base({ confirmUnknownHost: async () => false }), KEY);
    assert.ok(!declined.ok && declined.error.code === 'host-key-unknown-rejected' && /did not trust/.test(declined.error.message));
    const nobody = await verifyHostKey(base(), KEY);
    assert.ok(!nobody.ok && nobody.error.code === 'host-key-unknown-rejected' && /no fingerprint is pinned/.test(nobody.error.message));
    const auto = await verifyHostKey(base({ interactive: false, confirmUnknownHost: async () => assert.fail('prompted while reconnecting') }), KEY);
    assert.ok(!auto.ok && auto.error.code === 'host-key-unknown-rejected');
    assert.ok(!fs.existsSync(path.join(dir, 'ext', 'accepted_hosts')));
  });

  it('keeps trusting the key seen earlier in this session, and treats any other as a change', async () => {
    assert.deepEqual(await verifyHostKey(base({ interactive: false, previousKey: KEY }), KEY), { ok: true });
    const r = await verifyHostKey(base({ interactive: false, previousKey: KEY }), OTHER);
    assert.ok(!r.ok && r.error.code === 'host-key-mismatch' && /changed while you were connected/.test(r.error.message));
  });

  it('logs fingerprints, never key material', async () => {
    await verifyHostKey(base({ pinnedFingerprint: fingerprintSha256(KEY) }), KEY);
    assert.ok(logs.some((l) => l.includes(fingerprintSha256(KEY))));
    assert.ok(logs.every((l) => !l.includes(KEY.toString('base64'))));
  });
});

describe('hostKeyAlgorithmsFor', () => {
  it('puts the known key types first so the server presents a key on record', () => {
    assert.equal(hostKeyAlgorithmsFor([]), undefined);
    assert.deepEqual(hostKeyAlgorithmsFor(['ssh-rsa'])?.slice(0, 4), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    const ecdsa = hostKeyAlgorithmsFor(['ecdsa-sha2-nistp256']) ?? [];
    assert.equal(ecdsa[0], 'ecdsa-sha2-nistp256');
    assert.equal(new Set(ecdsa).size, ecdsa.length);
    assert.equal(hostKeyAlgorithmsFor(['ssh-unknown']), undefined);
  });
});
