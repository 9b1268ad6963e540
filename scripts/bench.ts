// `npm run bench`: how long the participant waits, and how big the package is, each as a ratio to a
// baseline measured in the same run on the same machine. Prints a table and writes
// .test-output/bench.json. Needs root (it starts a private sshd with a throw-away user).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalTarget } from '../src/core/localTarget';
import { silentLogger } from '../src/core/logger';
import { SessionClient } from '../src/core/sessionClient';
import { SshTarget } from '../src/core/ssh/sshTarget';
import type { Target } from '../src/core/target';
import { resetUserHome, startSshd } from '../test/support/sshd';

const repo = path.resolve(__dirname, '..');
const runs = Number(process.env.BENCH_RUNS ?? 20);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function time(n: number, fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return median(samples);
}

interface Row {
  name: string;
  value: number;
  unit: string;
  baselineName: string;
  baseline: number;
  ratio: number;
  target?: string;
  met?: boolean;
}

function row(name: string, value: number, unit: string, baselineName: string, baseline: number, targetRatio?: number): Row {
  const ratio = value / baseline;
  return {
    name,
    value,
    unit,
    baselineName,
    baseline,
    ratio,
    ...(targetRatio !== undefined ? { target: `≤ ${targetRatio}×`, met: ratio <= targetRatio } : {}),
  };
}

async function clientFor(target: Target, home: string): Promise<SessionClient> {
  const client = new SessionClient({
    target,
    environmentId: 'demo-fast-function',
    runnerSource: path.join(repo, 'environments/runner.py'),
    environmentSource: path.join(repo, 'environments/demo-fast-function'),
    protectedMode: false,
    logger: silentLogger,
  });
  void home;
  await client.prepare();
  return client;
}

async function main(): Promise<void> {
  const rows: Row[] = [];

  // Size: the VSIX against the 1 MB target, and the bundle against ssh2 alone (its largest dependency).
  execFileSync('npm', ['run', '--silent', 'package'], { cwd: repo, stdio: 'inherit' });
  const vsix = fs.statSync(path.join(repo, 'dist/rebench-session.vsix')).size;
  rows.push(row('VSIX size', vsix / 1024, 'KiB', '1 MiB target', 1024, 1));

  // Activation: loading the extension bundle (with a stand-in `vscode` module) in a fresh Node, against a
  // fresh Node that loads nothing. ssh2 and the Markdown renderer are separate bundles loaded on first use.
  const stub = `const M=require('module');const o=M._load;M._load=function(r,...a){if(r==='vscode')return new Proxy({},{get:()=>new Proxy(function(){},{get:()=>()=>({}),apply:()=>({})})});return o.call(this,r,...a)};`;
  const nodeOnly = await time(Math.min(runs, 10), async () => execFileSync(process.execPath, ['-e', stub]));
  const withBundle = await time(Math.min(runs, 10), async () => execFileSync(process.execPath, ['-e', `${stub}require(${JSON.stringify(path.join(repo, 'dist/extension.js'))})`]));
  rows.push(row('activation: node + extension bundle', withBundle, 'ms', 'node alone', nodeOnly, 2));

  // Local target: a runner status read against the cost of starting python3 at all.
  const localHome = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-bench-'));
  const local = new LocalTarget({ home: localHome });
  const localClient = await clientFor(local, localHome);
  const python = await time(runs, () => local.exec('python3 -c pass'));
  const localStatus = await time(runs, () => localClient.status());
  rows.push(row('local: runner status', localStatus, 'ms', 'python3 -c pass', python, 3));

  // SSH: one command on the open connection against a fresh OpenSSH `ssh host true`.
  const sshd = await startSshd();
  try {
    resetUserHome();
    const ssh = new SshTarget({
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      identityFiles: [sshd.clientKeyPath],
      pinnedFingerprint: sshd.hostFingerprint,
      agent: false,
    });
    await ssh.connect();
    const sshArgs = ['-i', sshd.clientKeyPath, '-p', String(sshd.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', `${sshd.user}@${sshd.host}`];
    const freshSsh = await time(Math.min(runs, 10), async () => execFileSync('ssh', [...sshArgs, 'true']));
    const execTrue = await time(runs, () => ssh.exec('true'));
    rows.push(row('ssh: exec on the open connection', execTrue, 'ms', 'fresh `ssh host true`', freshSsh, 0.1));

    const sshClient = await clientFor(ssh, sshd.home);
    const remotePython = await time(runs, () => ssh.exec('python3 -c pass'));
    const sshStatus = await time(runs, () => sshClient.status());
    rows.push(row('ssh: runner status (clock re-sync)', sshStatus, 'ms', 'ssh exec python3 -c pass', remotePython, 3));
    rows.push(row('ssh: runner status (clock re-sync)', sshStatus, 'ms', 'fresh `ssh host true`', freshSsh, 1));
    ssh.dispose();
  } finally {
    await sshd.stop();
  }

  const width = Math.max(...rows.map((r) => r.name.length));
  console.log('\nbenchmark'.padEnd(width + 2), 'value'.padStart(10), '  baseline'.padEnd(34), 'ratio'.padStart(8), '  target');
  for (const r of rows) {
    console.log(
      r.name.padEnd(width + 1),
      `${r.value.toFixed(1)} ${r.unit}`.padStart(10),
      ` ${r.baselineName} = ${r.baseline.toFixed(1)}`.padEnd(34),
      `${r.ratio.toFixed(3)}×`.padStart(8),
      r.target ? ` ${r.target} ${r.met ? 'met' : 'NOT MET'}` : '',
    );
  }
  const out = path.join(repo, '.test-output/bench.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify({ when: new Date().toISOString(), machine: `${os.cpus().length} cores, ${os.platform()}`, runs, rows }, null, 2)}\n`);
  console.log(`\nwritten to ${path.relative(repo, out)}`);
  process.exitCode = rows.every((r) => r.met !== false) ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
