// SshTarget against a real OpenSSH server on loopback (test/support/sshd.ts).

import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fingerprintSha256 } from '../../src/core/ssh/hostKey';
import { SshError } from '../../src/core/ssh/sshError';
import type { UnknownHostInfo } from '../../src/core/ssh/hostTrust';
import { SshTarget, type SshTargetOptions } from '../../src/core/ssh/sshTarget';
import type { ConnectionState } from '../../src/core/target';
import { resetUserHome, type Sshd, startSshd, writeKnownHosts } from '../support/sshd';
import { until } from '../support/wait';

const logLines: string[] = [];
const logger = {
  info: (m: string) => logLines.push(`info ${m}`),
  warn: (m: string) => logLines.push(`warn ${m}`),
  error: (m: string) => logLines.push(`error ${m}`),
};

/** The file descriptor of a socket of this process (libuv's handle keeps it), or undefined. */
function socketFd(socket: net.Socket | undefined): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } } | undefined)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** TCP_NODELAY of one of this process's sockets, read by getsockopt on a copy of it (pidfd_getfd, Linux 5.6+). */
function tcpNoDelay(fd: number): number {
  const probe = [
    'import ctypes, os, socket, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'copy = libc.syscall(438, os.pidfd_open(int(sys.argv[1])), int(sys.argv[2]), 0)  # pidfd_getfd',
    'if copy < 0: raise OSError(ctypes.get_errno(), "pidfd_getfd")',
    's = socket.socket(fileno=copy)',
    'print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))',
  ].join('\n');
  return Number(execFileSync('python3', ['-c', probe, String(process.pid), String(fd)], { encoding: 'utf8' }).trim());
}

function waitForState(target: SshTarget, kind: ConnectionState['kind'], timeoutMs: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    if (target.state.kind === kind) return resolve(0);
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`state did not become ${kind} within ${timeoutMs} ms (now ${JSON.stringify(target.state)})`));
    }, timeoutMs);
    const sub = target.onStateChange((s) => {
      if (s.kind !== kind) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(Date.now() - start);
    });
  });
}

const isSshError = (code: SshError['code'], pattern?: RegExp) => (e: unknown) =>
  e instanceof SshError && e.code === code && (pattern === undefined || pattern.test(e.message));

describe('SshTarget against a real sshd', function () {
  this.timeout(30000);
  let sshd: Sshd;
  let work: string;
  const targets: SshTarget[] = [];

  const make = (extra: Partial<SshTargetOptions> = {}, server: Sshd = sshd): SshTarget => {
    const t = new SshTarget({
      host: server.host,
      port: server.port,
      user: server.user,
      identityFiles: [server.clientKeyPath],
      agent: false,
      knownHostsFiles: [path.join(work, 'known_hosts')],
      acceptedHostsFile: path.join(work, 'accepted', 'known_hosts'),
      logger,
      ...extra,
    });
    targets.push(t);
    return t;
  };

  before(async () => {
    sshd = await startSshd();
    resetUserHome();
  });
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ssh-sys-'));
  });
  afterEach(() => {
    for (const t of targets.splice(0)) t.dispose();
    fs.rmSync(work, { recursive: true, force: true });
  });
  after(async () => {
    await sshd?.stop();
    resetUserHome();
  });

  describe('host keys', () => {
    it('connects with a pinned fingerprint and runs commands as the login user', async () => {
      const t = make({ pinnedFingerprint: sshd.hostFingerprint });
      const states: string[] = [];
      t.onStateChange((s) => states.push(s.kind));
      await t.connect();
      assert.deepEqual(states, ['connecting', 'connected']);
      assert.equal(t.label, `${sshd.user}@127.0.0.1:${sshd.port}`);
      assert.equal((await t.exec('id -un')).stdout.trim(), sshd.user);
      assert.equal(await t.home(), sshd.home);
      await t.connect(); // already connected: nothing happens
      assert.deepEqual(states, ['connecting', 'connected']);
    });

    it('connects when known_hosts holds the key, without asking', async () => {
      writeKnownHosts(path.join(work, 'known_hosts'), '127.0.0.1', sshd.port, sshd.hostPublicKey, sshd.hostKeyType);
      let asked = 0;
      const t = make({ confirmUnknownHost: async () => (asked++, false) });
      await t.connect();
      assert.equal(asked, 0);
      assert.equal((await t.exec('echo ok')).stdout, 'ok\n');
    });

    it('refuses a wrong pin before authenticating: the server never sees a login attempt', async () => {
      const mark = sshd.readLog().length;
      const t = make({ pinnedFingerprint: fingerprintSha256(randomBytes(40)) });
      const start = Date.now();
      await assert.rejects(t.connect(), isSshError('host-key-mismatch', /pins SHA256:.*Nothing was sent/));
      const took = Date.now() - start;
      assert.deepEqual(t.state.kind, 'failed');
      assert.equal((t.state as { retryable: boolean }).retryable, false);
      // sshd logs the end of the connection a moment after the client gave up: wait for that line.
      const log = await until(
        'sshd to log the refused connection ending before authentication',
        () => {
          const text = sshd.readLog().slice(mark);
          return /(Disconnected from|Connection closed by) 127\.0\.0\.1 port \d+ \[preauth\]/.test(text) && text;
        },
        5000,
      );
      // The harness's readiness probe may show up here too; one of the connections must be ours.
      const ports = [...log.matchAll(/Connection from 127\.0\.0\.1 port (\d+)/g)].map((m) => m[1]);
      assert.ok(ports.length > 0, `the attempt reached the server:\n${log}`);
      assert.ok(
        ports.some((p) => new RegExp(`(Disconnected from|Connection closed by) 127\\.0\\.0\\.1 port ${p} \\[preauth\\]`).test(log)),
        `it ended before authentication:\n${log}`,
      );
      assert.doesNotMatch(log, /Accepted|Failed|Postponed|publickey|Invalid user|authenticating user/i, log);
      console.log(`      wrong pin refused in ${took} ms; sshd log: ${log.trim().split('\n').join(' | ')}`);
    });

    it('explains a key that differs from known_hosts, naming the file and line', async () => {
      const kh = path.join(work, 'known_hosts');
      fs.writeFileSync(
        kh,
        `# first line\n[127.0.0.1]:${sshd.port} ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), randomBytes(32)]).toString('base64')}\n`,
      );
      const t = make({ confirmUnknownHost: async () => assert.fail('must not ask about a changed key') });
      await assert.rejects(
        t.connect(),
        isSshError(
          'host-key-mismatch',
          new RegExp(`has changed since you last connected.*remove the old line 2 from ${kh.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
        ),
      );
    });

    it('asks about an unknown host with its SHA256 fingerprint: no refuses, yes connects and records it', async () => {
      const asked: UnknownHostInfo[] = [];
      const no = make({ confirmUnknownHost: async (info) => (asked.push(info), false) });
      await assert.rejects(no.connect(), isSshError('host-key-unknown-rejected', /did not trust/));
      assert.deepEqual(asked, [
        { host: '127.0.0.1', port: sshd.port, keyType: 'ssh-ed25519', fingerprint: sshd.hostFingerprint, knownKeyTypes: [] as string[] },
      ]);
      assert.ok(!fs.existsSync(path.join(work, 'accepted', 'known_hosts')));

      const yes = make({ confirmUnknownHost: async (info) => (asked.push(info), true) });
      await yes.connect();
      assert.equal(asked.length, 2);
      assert.equal(
        fs.readFileSync(path.join(work, 'accepted', 'known_hosts'), 'utf8').trim(),
        `[127.0.0.1]:${sshd.port} ssh-ed25519 ${sshd.hostPublicKey.toString('base64')}`,
      );
      // OpenSSH agrees with the line that was written.
      assert.match(
        execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', path.join(work, 'accepted', 'known_hosts')], { encoding: 'utf8' }),
        /ssh-ed25519/,
      );

      const again = make({ confirmUnknownHost: async () => assert.fail('asked twice') });
      await again.connect();
    });

    it('refuses an unknown host when nobody can be asked', async () => {
      await assert.rejects(make().connect(), isSshError('host-key-unknown-rejected', /not in your known_hosts files and no fingerprint is pinned/));
    });
  });

  describe('commands and files', () => {
    let t: SshTarget;
    beforeEach(async () => {
      t = make({ pinnedFingerprint: sshd.hostFingerprint });
      await t.connect();
    });

    it('streams output as it is produced, with exit code and stderr', async () => {
      const chunks: { text: string; at: number }[] = [];
      const errs: string[] = [];
      const start = Date.now();
      const r = await t.exec('for i in 1 2 3; do echo $i; sleep 0.2; done; echo warn >&2; exit 3', {
        onStdout: (text) => chunks.push({ text, at: Date.now() - start }),
        onStderr: (text) => errs.push(text),
      });
      assert.deepEqual(r, { code: 3, signal: null, stdout: '1\n2\n3\n', stderr: 'warn\n' });
      assert.equal(chunks.length, 3, JSON.stringify(chunks));
      assert.ok((chunks[2]?.at ?? 0) - (chunks[0]?.at ?? 0) >= 350, `chunks spread out: ${JSON.stringify(chunks)}`);
      assert.deepEqual(errs, ['warn\n']);
    });

    it('decodes UTF-8 split across packets, feeds stdin, reports signals and aborts', async () => {
      const seen: string[] = [];
      const utf = await t.exec("printf 'caf\\303'; sleep 0.1; printf '\\251\\n'", { onStdout: (s) => seen.push(s) });
      assert.equal(utf.stdout, 'café\n');
      assert.ok(seen.every((s) => !s.includes('\uFFFD')));
      assert.equal((await t.exec('cat', { stdin: 'über\n' })).stdout, 'über\n');
      assert.equal((await t.exec('wc -c')).stdout.trim(), '0', 'no stdin means empty input');
      const killed = await t.exec('kill -TERM $$; sleep 5');
      assert.deepEqual([killed.code, killed.signal], [null, 'SIGTERM']);

      const ac = new AbortController();
      const start = Date.now();
      setTimeout(() => ac.abort(), 200);
      const aborted = await t.exec('sleep 9.87', { signal: ac.signal });
      assert.ok(Date.now() - start < 1500, `abort took ${Date.now() - start} ms`);
      assert.deepEqual([aborted.code, aborted.signal], [null, 'SIGTERM']);
      assert.equal((await t.exec('pgrep -u "$(id -u)" -f "^sleep 9.87" || true')).stdout.trim(), '', 'the remote command is gone');
    });

    it('writes and reads 1 MiB over SFTP, creating folders and setting the mode', async () => {
      const data = randomBytes(1 << 20);
      const file = `${sshd.home}/rebench/sftp-test/deep/er/big.bin`;
      let start = process.hrtime.bigint();
      await t.writeFile(file, data, 0o640);
      const writeMs = Number(process.hrtime.bigint() - start) / 1e6;
      start = process.hrtime.bigint();
      const back = await t.readFile(file);
      const readMs = Number(process.hrtime.bigint() - start) / 1e6;
      assert.ok(back.equals(data));
      assert.equal((await t.exec(`stat -c %a ${file}`)).stdout.trim(), '640');
      await t.writeFile(file, 'small', 0o600);
      assert.equal((await t.readFile(file)).toString(), 'small');
      assert.equal((await t.exec(`stat -c %a ${file}`)).stdout.trim(), '600', 'mode applied to an existing file');
      await assert.rejects(t.readFile(`${sshd.home}/rebench/nope`), { code: 'ENOENT' });
      await assert.rejects(t.writeFile('/root-only-folder-x/f', 'x'), (e: unknown) => (e as { code?: string }).code === 'EACCES');
      console.log(`      SFTP 1 MiB: write ${writeMs.toFixed(1)} ms, read ${readMs.toFixed(1)} ms`);
    });

    it("sets TCP_NODELAY on the connection's socket, so that small requests are not held back (Nagle)", async () => {
      // The kernel's own answer for the socket itself (the round trip it saves is a bench figure: round-trip).
      const client = (t as unknown as { live?: { client?: { _sock?: net.Socket } } }).live?.client;
      const fd = socketFd(client?._sock);
      assert.ok(fd !== undefined, "the connection's socket and its file descriptor are where this test looks for them");
      assert.equal(tcpNoDelay(fd), 1);
      // The probe itself tells the two apart: a socket left as Node opens it has Nagle on.
      const plain = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: sshd.host, port: sshd.port }, () => resolve(s));
        s.on('error', reject);
      });
      try {
        assert.equal(tcpNoDelay(socketFd(plain)!), 0);
      } finally {
        plain.destroy();
      }
    });

    it("answers the server's first packets after login at once (a keepalive request carries the acknowledgement)", async () => {
      // The server logs each global request at LogLevel DEBUG: the keepalives this client sends as the host
      // keys and the first channel's answer arrive (without them, each connection's first command waited
      // for a delayed acknowledgement behind the server's Nagle; the time it saves is the bench's connect row).
      const chatty = await startSshd({ extraConfig: ['LogLevel DEBUG'] });
      try {
        const t = make({ pinnedFingerprint: chatty.hostFingerprint }, chatty);
        await t.connect();
        assert.equal((await t.exec('echo first')).stdout, 'first\n');
        const keepalives = () => chatty.readLog().match(/global_request: rtype keepalive@openssh\.com want_reply 1/g)?.length ?? 0;
        await until('a keepalive request right after login', () => keepalives() >= 1, 5000);
        await Promise.all([t.exec('true'), t.exec('true'), t.exec('true')]);
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.ok(keepalives() <= 3, `at most three, right after login (saw ${keepalives()})`);
      } finally {
        await chatty.stop();
      }
    });

    it('runs several commands at once over the one connection', async () => {
      const results = await Promise.all([1, 2, 3, 4, 5].map((i) => t.exec(`sleep 0.1; echo ${i}`)));
      assert.deepEqual(
        results.map((r) => r.stdout),
        ['1\n', '2\n', '3\n', '4\n', '5\n'],
      );
    });
  });

  describe('ProxyJump', () => {
    it('connects through a jump host, checking both host keys', async () => {
      const mark = sshd.readLog().length;
      const jump = {
        host: 'bastion',
        hostName: '127.0.0.1',
        port: sshd.port,
        user: sshd.user,
        identityFiles: [sshd.clientKeyPath],
        pinnedFingerprint: sshd.hostFingerprint,
      };
      const t = make({ jump, pinnedFingerprint: sshd.hostFingerprint });
      await t.connect();
      assert.equal((await t.exec('echo through')).stdout, 'through\n');
      const accepted = await until(
        'both logins in the sshd log',
        () => {
          const found =
            sshd
              .readLog()
              .slice(mark)
              .match(/Accepted publickey for \S+/g) ?? [];
          return found.length >= 2 && found;
        },
        5000,
      );
      assert.equal(accepted.length, 2, 'one login for the jump host, one for the VM behind it');
      assert.ok(logLines.some((l) => l.includes(`via ${sshd.user}@bastion:${sshd.port}`)));

      const badJump = make({ jump: { ...jump, pinnedFingerprint: fingerprintSha256(randomBytes(8)) }, pinnedFingerprint: sshd.hostFingerprint });
      await assert.rejects(badJump.connect(), isSshError('host-key-mismatch', /bastion/));
    });
  });

  describe('passphrase-protected key', () => {
    const passphrase = 'correct horse battery staple';
    let locked: Sshd;
    before(async () => {
      locked = await startSshd({ clientKeyPassphrase: passphrase });
    });
    after(async () => locked?.stop());

    it('asks again after a wrong passphrase, and never logs either', async () => {
      const asked: number[] = [];
      const t = make(
        {
          pinnedFingerprint: locked.hostFingerprint,
          askPassphrase: async (_p, attempt) => (asked.push(attempt), attempt === 1 ? 'wrong guess 123' : passphrase),
        },
        locked,
      );
      await t.connect();
      assert.deepEqual(asked, [1, 2]);
      assert.equal((await t.exec('echo in')).stdout, 'in\n');
      const all = logLines.join('\n');
      assert.ok(!all.includes(passphrase) && !all.includes('wrong guess 123'), 'no passphrase in the log');
      assert.ok(
        !all.includes('PRIVATE KEY') && !all.includes(fs.readFileSync(locked.clientKeyPath, 'utf8').split('\n')[1] ?? '@@'),
        'no key material in the log',
      );
      assert.ok(all.includes(locked.clientKeyPath), 'the key path is logged');
    });

    it('cancelling the prompt fails the login at once; three wrong passphrases fail it too', async () => {
      let calls = 0;
      const cancelled = make({ pinnedFingerprint: locked.hostFingerprint, askPassphrase: async () => (calls++, undefined) }, locked);
      const isCancel = (e: unknown) => e instanceof SshError && e.code === 'auth-failed' && !e.retryable && /cancelled the passphrase prompt/.test(e.message);
      // Two callers at once share one attempt: one prompt, one refusal.
      await Promise.all([assert.rejects(cancelled.connect(), isCancel), assert.rejects(cancelled.connect(), isCancel)]);
      assert.equal(calls, 1);
      assert.equal(cancelled.state.kind, 'failed');
      calls = 0;
      const wrong = make({ pinnedFingerprint: locked.hostFingerprint, askPassphrase: async () => (calls++, 'nope') }, locked);
      await assert.rejects(wrong.connect(), isSshError('auth-failed', /wrong 3 times/));
      assert.equal(calls, 3);
    });

    it('reconnects after the server restarts, without asking for the passphrase again', async () => {
      let asked = 0;
      const t = make(
        {
          pinnedFingerprint: locked.hostFingerprint,
          askPassphrase: async () => (asked++, passphrase),
          reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
          keepaliveIntervalMs: 1000,
        },
        locked,
      );
      await t.connect();
      assert.equal(asked, 1);
      const states: ConnectionState[] = [];
      t.onStateChange((s) => states.push(s));
      const running = t.exec('sleep 20').then(
        () => undefined,
        (e: unknown) => e,
      );
      const reconnecting = waitForState(t, 'reconnecting', 5000);
      await locked.restart();
      await reconnecting;
      assert.ok(isSshError('network', /whether it completed is unknown/)(await running), 'a command cut off by the drop has an unknown outcome');
      await waitForState(t, 'connected', 10000);
      assert.equal(asked, 1, 'no new prompt');
      assert.equal((await t.exec('echo back')).stdout, 'back\n');
      assert.equal(states[0]?.kind, 'reconnecting');
      console.log(`      states after the restart: ${states.map((s) => s.kind + ('attempt' in s ? ` ${s.attempt}` : '')).join(' -> ')}`);
    });
  });

  describe('other ways to log in', () => {
    it('uses keys held by an ssh-agent, and moves on from a stale agent socket to the key files', async () => {
      const sock = path.join(work, 'agent.sock');
      const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
      try {
        for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
        execFileSync('ssh-add', ['-q', sshd.clientKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
        const viaAgent = make({ pinnedFingerprint: sshd.hostFingerprint, agent: sock, identityFiles: [] });
        await viaAgent.connect();
        assert.equal((await viaAgent.exec('echo agent')).stdout, 'agent\n');
        assert.ok(logLines.some((l) => l.includes('trying the keys in the SSH agent')));

        const stale = make({ pinnedFingerprint: sshd.hostFingerprint, agent: path.join(work, 'gone.sock') });
        await stale.connect();
        assert.ok(logLines.some((l) => l.startsWith('warn') && l.includes('the SSH agent could not be used')));
      } finally {
        agent.kill();
      }
    });

    it('with no key here at all, says that no key was found and where it looked, not that the VM refused a prompt', async () => {
      const keys = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((n) => path.join(work, 'empty-home', '.ssh', n));
      const t = make({
        pinnedFingerprint: sshd.hostFingerprint,
        identityFiles: keys,
        keySource: 'the default key files',
        keyboardInteractive: async () => [],
      });
      const err = await t.connect().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof SshError && err.code === 'auth-failed' && !err.retryable, String(err));
      assert.match(
        err.message,
        new RegExp(
          `^No SSH key was found on this computer to log in to ${sshd.user}@${sshd.host.replace(/\./g, '\\.')}:${sshd.port}: looked for ${keys.join(', ').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(the default key files\\) and none of them exists\\. No SSH agent is running here either`,
        ),
      );
      assert.match(err.message, /set "identity_file" in the session profile/);
      assert.doesNotMatch(err.message, /refused keyboard-interactive|authorized_keys/);
    });

    it("a key that exists but is refused still points at the VM's authorized_keys", async () => {
      const other = path.join(work, 'other-key');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
      const t = make({ pinnedFingerprint: sshd.hostFingerprint, identityFiles: [other, path.join(work, 'missing-key')] });
      await assert.rejects(
        t.connect(),
        isSshError(
          'auth-failed',
          new RegExp(`did not accept the login\\. It refused ${other.replace(/\//g, '\\/')}\\..*authorized_keys of user "${sshd.user}"`),
        ),
      );
    });

    describe('keyboard-interactive (PAM)', () => {
      const password = `Pw-${randomBytes(6).toString('hex')}`;
      let pam: Sshd;
      before(async function () {
        if (typeof process.getuid !== 'function' || process.getuid() !== 0) this.skip(); // needs a password for the test user
        execFileSync('chpasswd', { input: `${sshd.user}:${password}\n` });
        pam = await startSshd({ extraConfig: ['UsePAM yes', 'KbdInteractiveAuthentication yes', 'AuthenticationMethods keyboard-interactive'] });
      });
      after(async () => {
        if (typeof process.getuid === 'function' && process.getuid() === 0) execFileSync('usermod', ['-p', '*', sshd.user]);
        await pam?.stop();
      });

      it("answers the server's prompts through the callback, once the keys are refused", async () => {
        const rounds: { name: string; prompts: { prompt: string; echo: boolean }[] }[] = [];
        const t = make(
          { pinnedFingerprint: pam.hostFingerprint, keyboardInteractive: async (name, _i, prompts) => (rounds.push({ name, prompts }), [password]) },
          pam,
        );
        await t.connect();
        assert.equal(rounds.length, 1);
        assert.match(rounds[0]?.prompts[0]?.prompt ?? '', /Password/);
        assert.equal(rounds[0]?.prompts[0]?.echo, false);
        assert.ok(!logLines.join('\n').includes(password), 'no password in the log');
      });

      it('cancelling the prompt fails the login without retrying', async () => {
        let calls = 0;
        const t = make({ pinnedFingerprint: pam.hostFingerprint, keyboardInteractive: async () => (calls++, undefined) }, pam);
        await assert.rejects(
          t.connect(),
          (e: unknown) => e instanceof SshError && e.code === 'auth-failed' && !e.retryable && /cancelled the login prompt/.test(e.message),
        );
        assert.equal(calls, 1);
      });
    });
  });

  describe('dropped links', () => {
    it('notices a silent server by keepalive, reconnects once it answers again', async function () {
      this.timeout(20000);
      const t = make({
        pinnedFingerprint: sshd.hostFingerprint,
        keepaliveIntervalMs: 500,
        keepaliveCountMax: 2,
        readyTimeoutMs: 1500,
        reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
      });
      await t.connect();
      const states: ConnectionState[] = [];
      t.onStateChange((s) => states.push(s));
      let started = false;
      const running = t.exec('echo started; exec sleep 30', { onStdout: () => (started = true) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      await until('the command to run on the server', () => started, 5000);
      sshd.pause();
      let resumed = false;
      try {
        const noticedMs = await waitForState(t, 'reconnecting', 500 * 3 + 1500);
        console.log(`      silent server noticed after ${noticedMs} ms (keepalive 500 ms x 2)`);
        assert.ok(noticedMs <= 500 * 3 + 1000, `noticed after ${noticedMs} ms`);
        assert.ok(isSshError('network')(await running));
        await assert.rejects(t.exec('true'), (e: unknown) => e instanceof SshError && e.retryable && /being restored/.test(e.message));
        // At least one attempt times out against the frozen server before it answers again.
        await until('a second reconnection attempt', () => states.some((s) => s.kind === 'reconnecting' && s.attempt >= 2), 8000);
        sshd.resume();
        resumed = true;
        const backMs = await waitForState(t, 'connected', 8000);
        console.log(
          `      reconnected ${backMs} ms after resuming; states: ${states.map((s) => s.kind + ('attempt' in s ? ` ${s.attempt}` : '')).join(' -> ')}`,
        );
      } finally {
        if (!resumed) sshd.resume();
      }
      assert.equal((await t.exec('echo alive')).stdout, 'alive\n');
      const reasons = states.filter((s): s is Extract<ConnectionState, { kind: 'reconnecting' }> => s.kind === 'reconnecting').map((s) => s.reason);
      assert.match(reasons[0] ?? '', /keepalive/);
    });

    it('stops reconnecting when the login is refused after a drop, and does not prompt', async () => {
      const own = await startSshd();
      try {
        let prompts = 0;
        const t = make(
          {
            pinnedFingerprint: own.hostFingerprint,
            reconnect: { initialDelayMs: 100, maxDelayMs: 200 },
            askPassphrase: async () => (prompts++, undefined),
            keyboardInteractive: async () => (prompts++, undefined),
          },
          own,
        );
        await t.connect();
        fs.writeFileSync(path.join(own.dir, 'authorized_keys'), ''); // the VM no longer accepts the key
        const failed = waitForState(t, 'failed', 8000);
        await own.restart();
        await failed;
        const s = t.state as Extract<ConnectionState, { kind: 'failed' }>;
        assert.equal(s.retryable, false);
        assert.match(s.reason, /did not accept the login/);
        assert.equal(prompts, 0);
      } finally {
        await own.stop();
      }
    });

    it('refuses to reconnect when the host key changed during the session', async () => {
      const own = await startSshd();
      try {
        const t = make({ confirmUnknownHost: async () => true, reconnect: { initialDelayMs: 100, maxDelayMs: 200 } }, own);
        await t.connect(); // trusted on first use, recorded in the extension's file
        fs.rmSync(own.hostKeyPath);
        fs.rmSync(`${own.hostKeyPath}.pub`);
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', own.hostKeyPath]);
        const failed = waitForState(t, 'failed', 8000);
        await own.restart();
        await failed;
        const s = t.state as Extract<ConnectionState, { kind: 'failed' }>;
        assert.equal(s.retryable, false);
        assert.match(s.reason, /has changed since you last connected/);
      } finally {
        await own.stop();
      }
    });

    it('gives up after maxAttempts when the server stays away, and reconnectNow skips the wait', async () => {
      const own = await startSshd();
      const t = make({ pinnedFingerprint: own.hostFingerprint, reconnect: { initialDelayMs: 5000, maxDelayMs: 5000, maxAttempts: 2 } }, own);
      await t.connect();
      const reconnecting = waitForState(t, 'reconnecting', 5000);
      await own.stop();
      await reconnecting;
      const start = Date.now();
      const failed = waitForState(t, 'failed', 5000);
      const attempting = waitForState(t, 'connecting', 2000);
      t.reconnectNow();
      await attempting;
      await waitForState(t, 'reconnecting', 2000);
      t.reconnectNow();
      await failed;
      assert.ok(Date.now() - start < 3000, 'the 5 s waits were skipped');
      const s = t.state as Extract<ConnectionState, { kind: 'failed' }>;
      assert.equal(s.retryable, true);
      assert.match(s.reason, /Gave up reconnecting .* after 2 attempts/);
    });
  });
});
