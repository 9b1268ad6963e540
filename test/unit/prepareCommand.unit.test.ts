// The `prepare` command line: every option, its defaults, and a clear message (exit 2) for each mistake.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parsePrepareArgs, PREPARE_USAGE, type ParsedPrepareArgs, prepareCommand } from '../../src/organiser/prepareCommand';

const FP = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s';

describe('prepare command-line arguments', () => {
  let dir = '';
  let home = '';
  let pub = '';
  const required = ['--host', 'vm7.example.org', '--admin', 'ubuntu', '--participant', 'agent', '--environment', 'environments/demo-fast-function'];

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prepare-args-'));
    home = path.join(dir, 'home');
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true });
    fs.writeFileSync(path.join(home, '.ssh', 'id_ed25519'), 'key');
    pub = path.join(dir, 'agent.pub');
    fs.writeFileSync(pub, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk2fq0 agent@laptop\n');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const ok = (args: string[], env: NodeJS.ProcessEnv = {}): ParsedPrepareArgs => {
    const r = parsePrepareArgs(args, env, home);
    if (r.kind !== 'ok') assert.fail(`expected ok, got ${JSON.stringify(r)}`);
    return r.value;
  };
  const error = (args: string[], env: NodeJS.ProcessEnv = {}): string => {
    const r = parsePrepareArgs(args, env, home);
    if (r.kind !== 'error') assert.fail(`expected an error, got ${JSON.stringify(r)}`);
    return r.message;
  };

  it('fills in the defaults: port 22, the keys that exist in ~/.ssh, ~/.ssh/known_hosts, the agent, an output file named after participant and host', () => {
    const { options, json } = ok(required);
    assert.equal(json, false);
    assert.deepEqual(options.admin, {
      host: 'vm7.example.org',
      port: 22,
      user: 'ubuntu',
      identityFiles: [path.join(home, '.ssh', 'id_ed25519')],
      agent: undefined,
      password: undefined,
      keyPassphrase: undefined,
      hostKeyFingerprint: undefined,
      knownHostsFiles: [path.join(home, '.ssh', 'known_hosts')],
      acceptNewHostKey: false,
    });
    assert.equal(options.profilePath, 'agent@vm7.example.org.rebench-profile.json');
    assert.equal(options.participant, 'agent');
    assert.equal(options.environmentDir, 'environments/demo-fast-function');
    assert.equal(options.scoringUser, undefined);
    assert.equal(options.createParticipant, false);
    assert.equal(options.force, false);
    assert.equal(options.jump, undefined);
  });

  it('reads every option, in both --name value and --name=value forms', () => {
    const { options, json } = ok(
      [
        ...required,
        '--port=2222',
        '-i',
        '/dev/null',
        '--identity',
        '/dev/null',
        '--no-agent',
        '--host-key-fingerprint',
        ` ${FP} `,
        '--known-hosts',
        'a',
        '--known-hosts=b',
        '--accept-new-host-key',
        '--jump',
        'bastion-user@bastion.example.org:2200',
        '--jump-admin',
        'ops',
        '--jump-host-key-fingerprint',
        FP,
        '--scoring-user',
        'scorer',
        '--solution-dir',
        '/srv/agent/solution',
        '--participant-key',
        pub,
        '--create-participant',
        '--force',
        '--out',
        'p.json',
        '--name',
        'Study VM 7',
        '--participant-identity-file',
        '~/.ssh/study',
        '--json',
        '--password-env',
        'ADMIN_PW',
        '--key-passphrase-env',
        'KEY_PW',
      ],
      { ADMIN_PW: 'pw', KEY_PW: 'kp' },
    );
    assert.equal(json, true);
    assert.equal(options.admin.port, 2222);
    assert.deepEqual(options.admin.identityFiles, ['/dev/null', '/dev/null']);
    assert.equal(options.admin.agent, false);
    assert.equal(options.admin.hostKeyFingerprint, FP);
    assert.deepEqual(options.admin.knownHostsFiles, ['a', 'b']);
    assert.equal(options.admin.acceptNewHostKey, true);
    assert.equal(options.admin.password, 'pw');
    assert.equal(options.admin.keyPassphrase, 'kp');
    assert.deepEqual(options.jump, { host: 'bastion.example.org', port: 2200, participantUser: 'bastion-user', adminUser: 'ops', hostKeyFingerprint: FP });
    assert.equal(options.scoringUser, 'scorer');
    assert.equal(options.solutionDir, '/srv/agent/solution');
    assert.equal(options.participantPublicKey, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk2fq0 agent@laptop');
    assert.equal(options.createParticipant, true);
    assert.equal(options.force, true);
    assert.equal(options.profilePath, 'p.json');
    assert.equal(options.profileName, 'Study VM 7');
    assert.equal(options.participantIdentityFile, '~/.ssh/study');
  });

  it("a jump host without a user is the participant's; IPv6 addresses go in brackets; a non-default port is in the default file name", () => {
    const { options } = ok([...required, '--jump', '[2001:db8::1]:22', '--port', '2022']);
    assert.deepEqual(options.jump, { host: '2001:db8::1', port: 22, participantUser: 'agent', adminUser: undefined, hostKeyFingerprint: undefined });
    assert.equal(options.profilePath, 'agent@vm7.example.org_2022.rebench-profile.json');
  });

  it('names each mistake', () => {
    const cases: Array<[string[], RegExp, NodeJS.ProcessEnv?]> = [
      [[], /--host is required \(the VM's address\)\. --admin is required .* --participant is required .* --environment is required/],
      [required.slice(2), /^--host is required/],
      [[...required, '--port', '0'], /--port must be a number from 1 to 65535, not "0"/],
      [[...required, '--port', '22x'], /--port must be a number/],
      [[...required, '--port'], /--port needs a value/],
      [[...required, '--port', '--json'], /--port needs a value/],
      [[...required, '--out', ''], /--out needs a non-empty value/],
      [[...required, '--frobnicate'], /unknown option "--frobnicate"/],
      [[...required, 'extra'], /unexpected argument "extra"/],
      [[...required, '--host', 'other'], /--host is given twice/],
      [[...required, '--json=yes'], /--json takes no value/],
      [[...required, '--', 'x'], /unknown option "--"/],
      [[...required, '-x'], /unknown option "-x"/],
      [[...required, '-i=/k'], /unknown option "-i=\/k"/],
      [[...required, '--environment=other'], /--environment is given twice/],
      [['--host', 'vm 7', ...required.slice(2)], /--host "vm 7" is not a host name/],
      [[...required.slice(0, 4), '--participant', 'Agent Smith', ...required.slice(6)], /--participant "Agent Smith" is not a valid user name/],
      [[...required, '--scoring-user', 'agent'], /--scoring-user must differ from --participant/],
      [[...required, '--scoring-user', 'Root!'], /--scoring-user "Root!" is not a valid user name/],
      [[...required, '--solution-dir', 'solution'], /--solution-dir must be an absolute path on the VM, not "solution"/],
      [[...required, '--host-key-fingerprint', 'SHA256:short'], /--host-key-fingerprint: "SHA256:short" is not a complete SHA256 fingerprint/],
      [[...required, '--host-key-fingerprint', 'aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99'], /is an MD5 fingerprint; a SHA256 one is needed/],
      [[...required, '--jump-admin', 'ops'], /--jump-admin and --jump-host-key-fingerprint need --jump/],
      [[...required, '--jump', 'bastion:99999'], /the port in --jump "bastion:99999" must be 1 to 65535/],
      [[...required, '--password-env', 'NOPE'], /--password-env NOPE: the environment variable NOPE is not set/],
      [[...required, '--key-passphrase-env', 'EMPTY'], /the environment variable EMPTY is not set/, { EMPTY: '' }],
      [[...required, '--create-participant'], /--create-participant needs --participant-key FILE/],
      [[...required, '--participant-key', '/no/such.pub'], /--participant-key \/no\/such\.pub: cannot read it \(ENOENT\)/],
      [[...required, '-i', '/no/such/key'], /-i \/no\/such\/key: no such key file/],
      [[...required, '--name', 'x'.repeat(121)], /--name is longer than 120 characters/],
    ];
    for (const [args, message, env] of cases) assert.match(error(args, env ?? {}), message, args.join(' '));
    const priv = path.join(dir, 'id_private');
    fs.writeFileSync(priv, '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\n');
    assert.match(error([...required, '--participant-key', priv]), /is not one OpenSSH public key line .* not a private key/);
  });

  it('--help anywhere shows the usage, which explains every option the parser knows', () => {
    assert.deepEqual(parsePrepareArgs([...required, '--frobnicate', '--help']), { kind: 'help' });
    assert.deepEqual(parsePrepareArgs(['-h']), { kind: 'help' });
    const documented = new Set(PREPARE_USAGE.match(/--[a-z-]+/g));
    const source = fs.readFileSync(path.join(__dirname, '..', '..', 'src', 'organiser', 'prepareCommand.ts'), 'utf8');
    const known = new Set(source.match(/'--[a-z-]+'/g)?.map((s) => s.slice(1, -1)));
    for (const option of known) assert.ok(documented.has(option), `${option} is not in the help`);
  });

  it('prepareCommand: exit 2 with the message on stderr for bad arguments, 0 with the usage on stdout for --help', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    assert.equal(await prepareCommand(['--host', 'vm'], io), 2);
    assert.match(err[0] ?? '', /^prepare: error: --admin is required/);
    assert.match(err[1] ?? '', /--help/);
    assert.deepEqual(out, []);
    err.length = 0;
    assert.equal(await prepareCommand(['--help'], io), 0);
    assert.match(out.join('\n'), /^usage: rebench-organiser prepare --host HOST --admin USER/);
    assert.deepEqual(err, []);
  });

  it('prepareCommand: a failure before connecting (no such environment folder) is exit 1 with what to do', async () => {
    const err: string[] = [];
    const code = await prepareCommand(
      [...required.slice(0, 6), '--environment', path.join(dir, 'missing-env'), '--out', path.join(dir, 'p.json'), '-i', '/dev/null'],
      { out: () => {}, err: (l) => err.push(l) },
    );
    assert.equal(code, 1);
    assert.match(err.join('\n'), /^prepare: error: The environment folder .*missing-env does not exist\. Pass --environment/);
  });
});
