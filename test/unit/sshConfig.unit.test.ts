import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { matchGlob, matchPatternList } from '../../src/core/ssh/hostPatterns';
import {
  configFileLabel,
  type IncludedFile,
  listHosts,
  listHostSources,
  parseJumpSpec,
  parseSshConfig,
  resolveHost,
  splitArgs,
} from '../../src/core/ssh/sshConfig';
import { loadSshConfig, readIncludeFromDisk } from '../../src/core/ssh/sshConfigFiles';

const HOME = '/home/ana';
const opts = { home: HOME };
const who = { home: HOME, localUser: 'ana' };

function resolve(text: string, alias: string, readInclude?: (p: string) => IncludedFile[]) {
  return resolveHost(parseSshConfig(text, { ...opts, readInclude }), alias, who);
}

describe('host patterns', () => {
  it('matches * and ? case-insensitively', () => {
    assert.ok(matchGlob('*.example.com', 'vm1.EXAMPLE.com'));
    assert.ok(matchGlob('vm?', 'vm7'));
    assert.ok(!matchGlob('vm?', 'vm10'));
    assert.ok(matchGlob('*', ''));
    assert.ok(matchGlob('a*b*c', 'aXXbYYc'));
    assert.ok(!matchGlob('a*b*c', 'aXXbYY'));
    assert.ok(matchGlob('[10.0.0.1]:2222', '[10.0.0.1]:2222'), 'brackets are literal');
  });
  it('a negated pattern vetoes the whole list; negations alone never match', () => {
    assert.ok(matchPatternList(['*.lab', '!bad.lab'], 'good.lab'));
    assert.ok(!matchPatternList(['*.lab', '!bad.lab'], 'bad.lab'));
    assert.ok(!matchPatternList(['!bad.lab'], 'good.lab'));
  });
});

describe('splitArgs', () => {
  it('handles quotes, escapes and trailing comments', () => {
    assert.deepEqual(splitArgs('"/path with space/key" other'), { args: ['/path with space/key', 'other'] });
    assert.deepEqual(splitArgs("'single quoted' x"), { args: ['single quoted', 'x'] });
    assert.deepEqual(splitArgs('a\\ b c # comment'), { args: ['a b', 'c'] });
    assert.ok('error' in splitArgs('"unterminated'));
  });
});

describe('parseSshConfig / resolveHost', () => {
  it('reads HostName, User, Port and IdentityFile with ~ expansion', () => {
    const r = resolve(['Host vm', '  HostName 10.1.2.3', '  User agent', '  Port 2222', '  IdentityFile ~/.ssh/vm_key'].join('\n'), 'vm');
    assert.equal(r.hostName, '10.1.2.3');
    assert.equal(r.user, 'agent');
    assert.equal(r.port, 2222);
    assert.deepEqual(r.identityFiles, ['/home/ana/.ssh/vm_key']);
    assert.equal(r.identityFilesExplicit, true);
    assert.deepEqual(r.warnings, []);
  });

  it('falls back to OpenSSH defaults for a host the file does not mention', () => {
    const r = resolve('Host other\n  User x\n', 'plain.example.org');
    assert.equal(r.hostName, 'plain.example.org');
    assert.equal(r.port, 22);
    assert.equal(r.user, 'ana');
    assert.equal(r.identityFilesExplicit, false);
    assert.deepEqual(r.identityFiles, ['/home/ana/.ssh/id_rsa', '/home/ana/.ssh/id_ecdsa', '/home/ana/.ssh/id_ed25519']);
    assert.deepEqual(r.userKnownHostsFiles, ['/home/ana/.ssh/known_hosts', '/home/ana/.ssh/known_hosts2']);
    assert.equal(r.proxyJump, undefined);
    assert.deepEqual(r.jumpHosts, []);
    assert.equal(r.strictHostKeyChecking, 'ask');
    assert.equal(r.serverAliveIntervalS, 0);
    assert.equal(r.serverAliveCountMax, 3);
    assert.equal(r.connectTimeoutS, undefined);
  });

  it('uses the first value found (OpenSSH semantics): a wildcard block above wins', () => {
    const wildcardFirst = resolve('Host *\n  User everyone\nHost vm\n  User special\n', 'vm');
    assert.equal(wildcardFirst.user, 'everyone');
    const specificFirst = resolve('Host vm\n  User special\nHost *\n  User everyone\n  Port 2200\n', 'vm');
    assert.equal(specificFirst.user, 'special');
    assert.equal(specificFirst.port, 2200, 'the wildcard still fills what the specific block left out');
    const twiceInOneBlock = resolve('Host vm\n  Port 1111\n  Port 2222\n', 'vm');
    assert.equal(twiceInOneBlock.port, 1111);
  });

  it('settings before any Host line apply to every host', () => {
    const r = resolve('User global\nPort 2022\nHost vm\n  User local\n', 'vm');
    assert.equal(r.user, 'global');
    assert.equal(r.port, 2022);
  });

  it('collects IdentityFile from every matching block, in order, without duplicates', () => {
    const r = resolve(['Host vm', '  IdentityFile ~/.ssh/a', 'Host *', '  IdentityFile ~/.ssh/b', '  IdentityFile ~/.ssh/a'].join('\n'), 'vm');
    assert.deepEqual(r.identityFiles, ['/home/ana/.ssh/a', '/home/ana/.ssh/b']);
  });

  it('accepts key=value, odd spacing, any keyword case, quotes and comments', () => {
    const r = resolve(
      [
        '# comment',
        '',
        'HOST vm',
        '\thostname=10.0.0.9',
        '  USER = bob',
        '  port\t2201',
        '  IdentityFile "~/.ssh/my key"',
        '  identitiesonly yes # trailing',
      ].join('\r\n'),
      'vm',
    );
    assert.equal(r.hostName, '10.0.0.9');
    assert.equal(r.user, 'bob');
    assert.equal(r.port, 2201);
    assert.deepEqual(r.identityFiles, ['/home/ana/.ssh/my key']);
    assert.equal(r.identitiesOnly, true);
  });

  it('matches several patterns, wildcards and negations on one Host line', () => {
    const text = ['Host *.lab !bad.lab gpu?', '  User labuser', 'Host *', '  User fallback'].join('\n');
    assert.equal(resolve(text, 'a.lab').user, 'labuser');
    assert.equal(resolve(text, 'bad.lab').user, 'fallback');
    assert.equal(resolve(text, 'gpu1').user, 'labuser');
    assert.equal(resolve(text, 'gpu12').user, 'fallback');
    assert.equal(resolve(text, 'A.LAB').user, 'labuser', 'host matching ignores case');
  });

  it('expands %h %r %u %d %p %n %% in paths and %h in HostName', () => {
    const r = resolve(
      ['Host vm*', '  HostName %h.example.com', '  User agent', '  Port 2222', '  IdentityFile ~/.ssh/%h-%r-%u-%p-%n', '  IdentityFile %d/keys/100%%'].join(
        '\n',
      ),
      'vm1',
    );
    assert.equal(r.hostName, 'vm1.example.com');
    assert.deepEqual(r.identityFiles, ['/home/ana/.ssh/vm1.example.com-agent-ana-2222-vm1', '/home/ana/keys/100%']);
  });

  it('keeps an unknown token as written, with a warning', () => {
    const r = resolve('Host vm\n  IdentityFile ~/.ssh/%Z_key\n', 'vm');
    assert.deepEqual(r.identityFiles, ['/home/ana/.ssh/%Z_key']);
    assert.match(r.warnings.join('\n'), /%Z.*not supported/);
  });

  it('reads UserKnownHostsFile (several, or none), StrictHostKeyChecking, ServerAlive*, ConnectTimeout', () => {
    const r = resolve(
      [
        'Host vm',
        '  UserKnownHostsFile ~/.ssh/kh1 /etc/kh2',
        '  StrictHostKeyChecking accept-new',
        '  ServerAliveInterval 30',
        '  ServerAliveCountMax 5',
        '  ConnectTimeout 7',
      ].join('\n'),
      'vm',
    );
    assert.deepEqual(r.userKnownHostsFiles, ['/home/ana/.ssh/kh1', '/etc/kh2']);
    assert.equal(r.strictHostKeyChecking, 'accept-new');
    assert.equal(r.serverAliveIntervalS, 30);
    assert.equal(r.serverAliveCountMax, 5);
    assert.equal(r.connectTimeoutS, 7);
    assert.deepEqual(resolve('Host vm\n UserKnownHostsFile none\n', 'vm').userKnownHostsFiles, []);
    assert.equal(resolve('Host vm\n StrictHostKeyChecking off\n', 'vm').strictHostKeyChecking, 'no');
  });

  it('turns bad values into warnings and keeps going', () => {
    const r = resolve(
      [
        'Host vm',
        '  Port 99999',
        '  Port abc',
        '  IdentitiesOnly maybe',
        '  ServerAliveInterval soon',
        '  StrictHostKeyChecking sometimes',
        '  HostName 10.0.0.1',
      ].join('\n'),
      'vm',
    );
    assert.equal(r.port, 22);
    assert.equal(r.hostName, '10.0.0.1');
    assert.equal(r.identitiesOnly, false);
    assert.equal(r.strictHostKeyChecking, 'ask');
    assert.match(r.warnings.join('\n'), /Port "99999"/);
    assert.match(r.warnings.join('\n'), /IdentitiesOnly|identitiesonly/);
    assert.match(r.warnings.join('\n'), /serveraliveinterval "soon"/);
  });

  it('reports unreadable lines with file and line number', () => {
    const c = parseSshConfig('Host vm\n  = oops\n  IdentityFile "open\n  User ok\n', { ...opts, fileName: 'cfg' });
    assert.equal(c.warnings.length, 2);
    assert.match(c.warnings[0] ?? '', /^cfg:2: /);
    assert.match(c.warnings[1] ?? '', /^cfg:3: unterminated double quote/);
    assert.equal(resolveHost(c, 'vm', who).user, 'ok');
  });

  describe('ProxyJump', () => {
    it('reads user@host:port for the first hop', () => {
      const r = resolve('Host vm\n  HostName 10.0.0.5\n  ProxyJump jumper@bastion.example.com:2200\n', 'vm');
      assert.equal(r.proxyJump?.hostName, 'bastion.example.com');
      assert.equal(r.proxyJump?.user, 'jumper');
      assert.equal(r.proxyJump?.port, 2200);
      assert.equal(r.jumpHosts.length, 1);
    });
    it('resolves the jump host alias through the same config, the spec overriding user and port', () => {
      const text = ['Host vm', '  ProxyJump bastion', 'Host bastion', '  HostName 192.0.2.7', '  User gate', '  Port 2022', '  IdentityFile ~/.ssh/gate'].join(
        '\n',
      );
      const r = resolve(text, 'vm');
      assert.deepEqual(
        { h: r.proxyJump?.hostName, u: r.proxyJump?.user, p: r.proxyJump?.port, k: r.proxyJump?.identityFiles },
        { h: '192.0.2.7', u: 'gate', p: 2022, k: ['/home/ana/.ssh/gate'] },
      );
      const overridden = resolve(text.replace('ProxyJump bastion', 'ProxyJump root@bastion:23'), 'vm');
      assert.equal(overridden.proxyJump?.user, 'root');
      assert.equal(overridden.proxyJump?.port, 23);
      assert.equal(overridden.proxyJump?.hostName, '192.0.2.7');
    });
    it('ProxyJump none (first value) means a direct connection', () => {
      const r = resolve('Host vm\n  ProxyJump none\nHost *\n  ProxyJump bastion\n', 'vm');
      assert.equal(r.proxyJump, undefined);
      assert.equal(resolve('Host vm\n  ProxyJump none\nHost *\n  ProxyJump bastion\n', 'other').proxyJump?.hostName, 'bastion');
    });
    it("keeps a chain in order, with the first hop's own ProxyJump in front", () => {
      const r = resolve(['Host vm', '  ProxyJump a,b', 'Host a', '  ProxyJump outer'].join('\n'), 'vm');
      assert.deepEqual(
        r.jumpHosts.map((h) => h.hostName),
        ['outer', 'a', 'b'],
      );
      assert.equal(r.proxyJump?.hostName, 'outer');
    });
    it('stops a ProxyJump loop with a warning', () => {
      const r = resolve(['Host a', '  ProxyJump b', 'Host b', '  ProxyJump c', 'Host c', '  ProxyJump b'].join('\n'), 'a');
      assert.ok(r.jumpHosts.length > 0);
      assert.match(r.warnings.join('\n'), /loop/);
    });
    it('parses ssh:// and bracketed IPv6 forms, and rejects bad ports', () => {
      assert.deepEqual(parseJumpSpec('ssh://u@h:2'), { host: 'h', user: 'u', port: 2 });
      assert.deepEqual(parseJumpSpec('[2001:db8::1]:2222'), { host: '2001:db8::1', user: undefined, port: 2222 });
      assert.deepEqual(parseJumpSpec('2001:db8::1'), { host: '2001:db8::1', user: undefined });
      assert.ok('error' in parseJumpSpec('h:0'));
      assert.ok('error' in parseJumpSpec('@h'));
    });
    it('warns that ProxyCommand is not supported', () => {
      const r = resolve('Host vm\n  ProxyCommand ssh -W %h:%p gate\n', 'vm');
      assert.match(r.warnings.join('\n'), /ProxyCommand is not supported/);
    });
  });

  describe('Include and Match', () => {
    it('includes relative to ~/.ssh and applies included settings in place', () => {
      const seen: string[] = [];
      const reader = (p: string): IncludedFile[] => {
        seen.push(p);
        return p === '/home/ana/.ssh/conf.d/vm.conf' ? [{ path: p, text: 'Host vm\n  HostName 10.9.9.9\n  User inc\n' }] : [];
      };
      const r = resolve('Include conf.d/vm.conf\nHost vm\n  User later\n', 'vm', reader);
      assert.deepEqual(seen, ['/home/ana/.ssh/conf.d/vm.conf']);
      assert.equal(r.hostName, '10.9.9.9');
      assert.equal(r.user, 'inc', 'the included value came first');
    });
    it('an Include inside a Host block applies only to that block', () => {
      const reader = (p: string): IncludedFile[] => [{ path: p, text: 'User fromInclude\n' }];
      assert.equal(resolve('Host vm\n  Include extra\n', 'vm', reader).user, 'fromInclude');
      assert.equal(resolve('Host vm\n  Include extra\n', 'other', reader).user, 'ana');
    });
    it('a missing file, no reader, or a loop give warnings, not crashes', () => {
      const missing = parseSshConfig('Include nothere\n', { ...opts, readInclude: () => [] });
      assert.match(missing.warnings.join('\n'), /does not exist/);
      const noReader = parseSshConfig('Include x\nHost vm\n', opts);
      assert.match(noReader.warnings.join('\n'), /not followed/);
      const loop = parseSshConfig('Include self\n', { ...opts, readInclude: (p) => [{ path: p, text: 'Include self\n' }] });
      assert.match(loop.warnings.join('\n'), /nested more than 16/);
      const unreadable = parseSshConfig('Include x\n', { ...opts, readInclude: (p) => [{ path: p, error: 'EACCES' }] });
      assert.match(unreadable.warnings.join('\n'), /EACCES/);
    });
    it('skips a Match block with a warning; Match all applies', () => {
      const text = ['Match host vm exec "true"', '  User frommatch', 'Host vm', '  HostName 10.0.0.2', 'Match all', '  Port 2345'].join('\n');
      const r = resolve(text, 'vm');
      assert.equal(r.user, 'ana');
      assert.equal(r.hostName, '10.0.0.2');
      assert.equal(r.port, 2345);
      assert.match(r.warnings.join('\n') + parseSshConfig(text, opts).warnings.join('\n'), /Match.*not supported/);
    });
    it('follows globbed Include paths on disk, sorted', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshcfg-'));
      try {
        fs.mkdirSync(path.join(dir, '.ssh', 'conf.d'), { recursive: true });
        fs.writeFileSync(path.join(dir, '.ssh', 'conf.d', '20-b.conf'), 'Host b\n  Port 2002\n');
        fs.writeFileSync(path.join(dir, '.ssh', 'conf.d', '10-a.conf'), 'Host a\n  Port 2001\n');
        fs.writeFileSync(path.join(dir, '.ssh', 'conf.d', 'notes.txt'), 'Host c\n');
        fs.writeFileSync(path.join(dir, '.ssh', 'config'), 'Include conf.d/*.conf\nHost main\n');
        const files = readIncludeFromDisk(path.join(dir, '.ssh', 'conf.d', '*.conf'));
        assert.deepEqual(
          files.map((f) => path.basename(f.path)),
          ['10-a.conf', '20-b.conf'],
        );
        const config = loadSshConfig(undefined, dir);
        assert.deepEqual(listHosts(config), ['a', 'b', 'main']);
        assert.equal(resolveHost(config, 'b', { home: dir, localUser: 'x' }).port, 2002);
        assert.deepEqual(loadSshConfig(path.join(dir, 'absent'), dir).warnings, []);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
    it('names the file that defines each host, for the host picker: an included file, or a config given in the settings', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshcfg-'));
      try {
        fs.mkdirSync(path.join(dir, '.ssh', 'conf.d'), { recursive: true });
        fs.writeFileSync(path.join(dir, '.ssh', 'conf.d', 'work.conf'), 'Host gpu1\n  Port 2001\n');
        fs.writeFileSync(path.join(dir, '.ssh', 'config'), 'Include conf.d/*.conf\nHost main\n');
        fs.writeFileSync(path.join(dir, 'study-hosts'), 'Host vm7\n');
        const label = (c: ReturnType<typeof loadSshConfig>) => listHostSources(c).map((h) => `${h.alias} from ${configFileLabel(h.file, dir)}`);
        assert.deepEqual(label(loadSshConfig(undefined, dir)), ['gpu1 from ~/.ssh/conf.d/work.conf', 'main from ~/.ssh/config']);
        assert.deepEqual(label(loadSshConfig(path.join(dir, 'study-hosts'), dir)), ['vm7 from ~/study-hosts']);
        assert.equal(configFileLabel('/etc/ssh/ssh_config', dir), '/etc/ssh/ssh_config');
        assert.equal(configFileLabel(`${dir}x/config`, dir), `${dir}x/config`, 'a sibling folder is not the home folder');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('listHosts gives concrete aliases only, once each, in file order', () => {
    const c = parseSshConfig(['Host vm1 vm2 *.lab', 'Host !x gpu?', 'Host VM1 bastion', 'Host *'].join('\n'), opts);
    assert.deepEqual(listHosts(c), ['vm1', 'vm2', 'bastion']);
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 20 }), (text, alias) => {
        const c = parseSshConfig(text, { ...opts, readInclude: () => [] });
        resolveHost(c, alias, who);
        listHosts(c);
      }),
      { numRuns: 300 },
    );
    const lines = fc.array(
      fc
        .tuple(
          fc.constantFrom('Host', 'HostName', 'User', 'Port', 'IdentityFile', 'ProxyJump', 'Include', 'Match', 'UserKnownHostsFile', 'ConnectTimeout', 'Bogus'),
          fc.string({ maxLength: 30 }),
        )
        .map(([k, v]) => `${k} ${v}`),
      { maxLength: 20 },
    );
    fc.assert(
      fc.property(lines, fc.constantFrom('vm', 'a', '', 'x.lab'), (ls, alias) => {
        const c = parseSshConfig(ls.join('\n'), { ...opts, readInclude: (p) => [{ path: p, text: ls.join('\n') }] });
        const r = resolveHost(c, alias, who);
        assert.equal(typeof r.port, 'number');
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with `ssh -G` on hostname, user, port, identity files and ProxyJump', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshcfg-G-'));
    try {
      const home = os.homedir();
      const cfgPath = path.join(dir, 'config');
      const text = [
        'Host *.lab !skip.lab',
        '  User labuser',
        '  IdentityFile ~/.ssh/lab_%h_%r',
        'Host vm',
        '  HostName 10.20.30.40',
        '  Port 2222',
        '  User=agent',
        '  ProxyJump gate@bastion:2200',
        '  IdentityFile "~/.ssh/vm key"',
        'Host gpu?',
        '  HostName %h.cluster.example',
        '  ProxyJump none',
        'Host *',
        '  User fallback',
        '  Port 2022',
        '  IdentityFile ~/.ssh/all_%p',
      ].join('\n');
      fs.writeFileSync(cfgPath, text);
      const config = parseSshConfig(text, { home, fileName: cfgPath });
      const localUser = os.userInfo().username;
      for (const alias of ['vm', 'a.lab', 'skip.lab', 'gpu1', 'elsewhere']) {
        let out: string;
        try {
          out = execFileSync('ssh', ['-G', '-F', cfgPath, alias], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        } catch {
          this.skip(); // no OpenSSH client on this machine
          return;
        }
        const g = new Map<string, string[]>();
        for (const line of out.split('\n')) {
          const [k, ...rest] = line.split(' ');
          if (!k) continue;
          g.set(k, [...(g.get(k) ?? []), rest.join(' ')]);
        }
        const r = resolveHost(config, alias, { home, localUser });
        assert.equal(r.hostName, g.get('hostname')?.[0], `${alias} hostname`);
        assert.equal(r.user, g.get('user')?.[0], `${alias} user`);
        assert.equal(String(r.port), g.get('port')?.[0], `${alias} port`);
        // ssh -G prints identity files before expansion; expand with its own resolved values.
        const expand = (f: string) =>
          f
            .replace(/^~/, home)
            .replace(
              /%([hrpu%])/g,
              (_m, t: string) => ({ h: g.get('hostname')?.[0], r: g.get('user')?.[0], p: g.get('port')?.[0], u: localUser, '%': '%' })[t] ?? '',
            );
        assert.deepEqual(r.identityFiles, g.get('identityfile')?.map(expand), `${alias} identity files`);
        const pj = g.get('proxyjump')?.[0];
        assert.equal(
          r.proxyJump ? `${r.proxyJump.user}@${r.proxyJump.hostName}:${r.proxyJump.port}` : undefined,
          pj && pj !== 'none' ? pj : undefined,
          `${alias} proxyjump`,
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
