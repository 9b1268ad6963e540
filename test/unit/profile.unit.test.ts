import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseProfile, profileSchema } from '../../src/core/profile';

const good = {
  name: 'Study VM 7',
  host: '10.0.0.7',
  user: 'agent',
  environment: 'demo-fast-function',
  host_key_fingerprint: 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s',
};

describe('session profiles', () => {
  it('accepts a good profile and fills the defaults', () => {
    const r = parseProfile(JSON.stringify(good), 'p.json');
    assert.ok(r.ok);
    if (r.ok) {
      assert.equal(r.value.port, 22);
      assert.equal(r.value.protected, false);
    }
  });

  it('says which field is wrong and what to do', () => {
    const r = parseProfile(JSON.stringify({ ...good, host_key_fingerprint: 'MD5:aa:bb' }), 'p.json');
    assert.ok(!r.ok);
    if (!r.ok) {
      assert.match(r.error, /host_key_fingerprint/);
      assert.match(r.error, /organiser/);
    }
  });

  it('rejects unknown fields, bad JSON and huge files clearly', () => {
    const unknown = parseProfile(JSON.stringify({ ...good, passwd: 'x' }), 'p.json');
    assert.ok(!unknown.ok);
    const bad = parseProfile('{"name": ', 'p.json');
    assert.ok(!bad.ok && /not valid JSON/.test(bad.error));
    const huge = parseProfile(' '.repeat(100_000), 'p.json');
    assert.ok(!huge.ok && /small JSON file/.test(huge.error));
  });
});

describe('session profile messages say which field is wrong and what it should hold', () => {
  const without = (key: keyof typeof good) => {
    const copy: Record<string, unknown> = { ...good };
    delete copy[key];
    return JSON.stringify(copy);
  };

  it('a missing field is called missing, with what it should be', () => {
    const r = parseProfile(without('user'), 'vm7.json');
    assert.ok(!r.ok);
    if (!r.ok) {
      assert.equal(
        r.error,
        'vm7.json is not a valid session profile: user: missing. It should be the user name to log in as on the VM, e.g. "agent". Ask your organiser to check it.',
      );
      assert.doesNotMatch(r.error, /Invalid input|received undefined/);
    }
  });

  it('a wrong value is quoted and the field described', () => {
    const r = parseProfile(JSON.stringify({ ...good, port: '22', environment: 'Demo Env' }), 'p.json');
    assert.ok(!r.ok);
    if (!r.ok) {
      assert.match(r.error, /port: "22" is not valid here\. It should be the VM's SSH port, a whole number from 1 to 65535/);
      assert.match(r.error, /environment: "Demo Env" is not valid here\. It should be the id of the environment/);
    }
  });

  it('a missing field of the jump host names the jump host', () => {
    const r = parseProfile(JSON.stringify({ ...good, jump: { host: 'bastion', host_key_fingerprint: good.host_key_fingerprint } }), 'p.json');
    assert.ok(!r.ok && /jump\.user: missing\. It should be the user name to log in as on the jump host/.test(r.error), r.ok ? '' : r.error);
  });

  it('an unknown field is named with the fields a profile may have', () => {
    const r = parseProfile(JSON.stringify({ ...good, passwd: 'x' }), 'p.json');
    assert.ok(!r.ok);
    if (!r.ok) assert.match(r.error, /\(top level\): unknown field "passwd"\. Remove it; the fields here are name, host, port, user/);
  });

  it('a document that is not an object says what a profile is', () => {
    const r = parseProfile('[]', 'p.json');
    assert.ok(
      !r.ok && /\(top level\): \[\] is not valid here\. It should be a JSON object with the fields name, host, user/.test(r.error),
      r.ok ? '' : r.error,
    );
  });
});

describe('the README documents the session profile', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

  it("has a row for every field of a profile, identity_file included, in the profile's table", () => {
    const table = readme.slice(readme.indexOf('| Field | Required | What it holds |'));
    const rows = new Set([...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]));
    assert.deepEqual([...rows].sort(), Object.keys(profileSchema.shape).sort());
  });

  it("says which key a profile offers: its identity_file, the OpenSSH config's IdentityFile for its host, or the default key files", () => {
    const keys = readme.slice(readme.indexOf('**Which key is offered**'), readme.indexOf('**Passphrase**'));
    assert.match(keys, /the file named by the profile's `identity_file`; else the `IdentityFile` lines of your\s+OpenSSH config/);
    assert.match(keys, /~\/\.ssh\/id_ed25519/);
    assert.match(keys, /"No SSH key was found on this computer"/);
  });
});
