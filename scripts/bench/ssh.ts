// The SSH figures: what a click costs through the real session client over the real SSH target, against
// what OpenSSH itself costs for the same work, all on one private sshd on loopback in one run.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { silentLogger } from '../../src/core/logger';
import { Session } from '../../src/core/session';
import { RUNNER_BOOT, RunnerClient } from '../../src/core/runnerClient';
import { RunnerChannel } from '../../src/core/runnerChannel';
import { SshTarget } from '../../src/core/ssh/sshTarget';
import { shellQuote } from '../../src/core/target';
import { resetUserHome, startSshd, writeKnownHosts, type Sshd } from '../../test/support/sshd';
import { makeFigure, summarize, type Figure, type Measured } from './figures';

const repo = path.resolve(__dirname, '../..');
export const NOOP_ENVIRONMENT = 'noop-scorer';
export const NOOP_SOURCE = path.join(repo, 'test/fixtures/environments', NOOP_ENVIRONMENT);
export const RUNNER_SOURCE = path.join(repo, 'environments/runner.pyz');
/** Score log entries at the end of the simulated 8-hour session. */
const LONG_SESSION_ENTRIES = 500;
/** The long and the short log of the status-against-log-length figure. */
const HUGE_LOG_ENTRIES = 10_000;
const SHORT_LOG_ENTRIES = 10;
/** How the runner was started before it was a package: its one file imported from the runner home, compiled. */
const SINGLE_FILE_BOOT =
  'import os,sys;sys.path.append(sys.argv.pop(1));import runner;c=runner.main(sys.argv[1:]);sys.stdout.flush();sys.stderr.flush();os._exit(c)';

/** The runner as it was one file (environments/runner.py before the package), from git; undefined without git. */
function singleFileRunner(): Buffer | undefined {
  try {
    const removedIn = execFileSync('git', ['rev-list', '-n', '1', 'HEAD', '--', 'environments/runner.py'], { cwd: repo, encoding: 'utf8' }).trim();
    if (!removedIn) return undefined;
    return execFileSync('git', ['show', `${removedIn}^:environments/runner.py`], { cwd: repo, maxBuffer: 1 << 24 });
  } catch {
    return undefined;
  }
}

export interface Reps {
  score: number;
  connect: number;
  status: number;
}

/** Runs a process to its end; rejects when it fails, with what it printed. */
export function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} ${args.join(' ')} exited with ${code}: ${err.trim() || out.trim()}`))));
  });
}

/** Times each of several operations `reps` times, taking turns, so that load from elsewhere hits them alike. */
export async function interleaved(reps: number, ops: Record<string, () => Promise<unknown>>, warmup = 2): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = {};
  for (const name of Object.keys(ops)) samples[name] = [];
  for (let i = -warmup; i < reps; i++) {
    for (const [name, op] of Object.entries(ops)) {
      const t = performance.now();
      await op();
      const ms = performance.now() - t;
      if (i >= 0) samples[name]!.push(ms);
    }
  }
  return samples;
}

/** A measurement; one that was left out (BENCH_FIGURES) has no samples and a summary of NaN, never shown. */
function m(name: string, values: number[] | undefined): Measured {
  if (!values?.length) return { name, unit: 'ms', summary: { median: NaN, p10: NaN, p90: NaN, min: NaN, max: NaN, n: 0 } };
  return { name, unit: 'ms', summary: summarize(values) };
}

function sshTarget(sshd: Sshd): SshTarget {
  return new SshTarget({
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    identityFiles: [sshd.clientKeyPath],
    pinnedFingerprint: sshd.hostFingerprint,
    agent: false,
  });
}

function client(target: SshTarget): RunnerClient {
  return new RunnerClient({
    target,
    environmentId: NOOP_ENVIRONMENT,
    runnerSource: RUNNER_SOURCE,
    environmentSource: NOOP_SOURCE,
    protectedMode: false,
    logger: silentLogger,
  });
}

/** The SSH figures by id, in the order they are measured; BENCH_FIGURES=id,id measures only those (to repeat a row). */
export const SSH_FIGURES = ['score-vs-mux', 'score-vs-fresh', 'status', 'connect', 'status-10000', 'startup', 'status-500', 'round-trip'] as const;

type SshFigure = (typeof SSH_FIGURES)[number];

function wanted(): (id: SshFigure) => boolean {
  const only = process.env.BENCH_FIGURES?.split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  if (!only) return () => true;
  const unknown = only.filter((f) => !(SSH_FIGURES as readonly string[]).includes(f));
  if (unknown.length) throw new Error(`BENCH_FIGURES names ${unknown.join(', ')}; the SSH figures are ${SSH_FIGURES.join(', ')}.`);
  return (id) => only.includes(id);
}

export async function measureSsh(reps: Reps, log: (line: string) => void): Promise<Figure[]> {
  const want = wanted();
  const sshd = await startSshd();
  const control = path.join(sshd.dir, 'control.sock');
  const knownHosts = path.join(sshd.dir, 'known_hosts');
  writeKnownHosts(knownHosts, sshd.host, sshd.port, sshd.hostPublicKey, sshd.hostKeyType);
  // OpenSSH as a participant would use it, minus their own config: key login, the host key checked.
  const sshArgs = [
    '-F',
    '/dev/null',
    '-i',
    sshd.clientKeyPath,
    '-p',
    String(sshd.port),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    `${sshd.user}@${sshd.host}`,
  ];
  const ssh = (command: string) => run('ssh', [...sshArgs, command]);
  const muxSsh = (command: string) => run('ssh', ['-S', control, ...sshArgs, command]);
  let target: SshTarget | undefined;
  try {
    resetUserHome();
    target = sshTarget(sshd);
    await target.connect();
    const c = client(target);
    const prepared = await c.ensureRunnerSetUp();
    if (prepared.state === 'not_started') await c.start();
    const home = await target.home();
    const runnerHome = `${home}/.rebench`;
    const [python = 'python3', pythonVersion = ''] = (await target.exec(`python3 -c 'import sys; print(sys.executable); print(sys.version.split()[0])'`)).stdout
      .trim()
      .split('\n');
    const envDir = `${runnerHome}/environments/${NOOP_ENVIRONMENT}`;
    const resultDir = `${home}/.rebench-bench`;
    await target.exec(`mkdir -p ${shellQuote(resultDir)}`);
    // The scorer as the runner starts it (same interpreter, folder and variables), without the runner.
    const scorerCommand =
      `cd ${shellQuote(envDir)} && REBENCH_RESULT_FILE=${shellQuote(`${resultDir}/result.json`)} ` +
      `REBENCH_SOLUTION_DIR=${shellQuote(`${home}/rebench/${NOOP_ENVIRONMENT}`)} ${shellQuote(python)} score.py`;
    const runnerStatus = `${shellQuote(python)} ${shellQuote(`${runnerHome}/runner.pyz`)} --home ${shellQuote(runnerHome)} status --json`;
    log(`ssh: runner home ${runnerHome}, python ${python} ${pythonVersion}`);

    // A master connection that later commands ride on, as ControlMaster/ControlPersist users have.
    await run('ssh', ['-M', '-S', control, '-o', 'ControlPersist=300', '-f', '-N', ...sshArgs]);
    try {
      const none: Record<string, number[]> = {};
      let score = none;
      if (want('score-vs-mux') || want('score-vs-fresh')) {
        log(`ssh: Score now ${reps.score}× against the scorer by multiplexed and fresh ssh`);
        score = await interleaved(reps.score, {
          client: async () => {
            const entry = await c.score();
            if (entry.score !== 1) throw new Error(`The no-op scorer's entry has score ${entry.score}: ${entry.message}`);
          },
          mux: () => muxSsh(scorerCommand),
          fresh: () => ssh(scorerCommand),
        });
      }

      let roundTrip = none;
      if (want('round-trip')) {
        log(`ssh: a trivial command ${reps.status}× on the open connection against OpenSSH's multiplexed exec`);
        roundTrip = await interleaved(reps.status, {
          client: async () => {
            const r = await target!.exec('true');
            if (r.code !== 0) throw new Error(`true failed: ${r.stderr}`);
          },
          mux: () => muxSsh('true'),
        });
      }

      let status = none;
      if (want('status')) {
        log(`ssh: runner status ${reps.status}× against python3 -c pass on the open connection`);
        status = await interleaved(reps.status, {
          client: () => c.status(),
          python: async () => {
            const r = await target!.exec('python3 -c pass');
            if (r.code !== 0) throw new Error(`python3 -c pass failed: ${r.stderr}`);
          },
        });
      }

      let connect = none;
      if (want('connect')) log(`ssh: connect and first status ${reps.connect}× against a fresh ssh host runner status`);
      if (want('connect'))
        connect = await interleaved(reps.connect, {
          client: async () => {
            // What the extension does before it shows the session: connect, prepare the VM, read status and log.
            const t = sshTarget(sshd);
            const session = new Session(client(t), silentLogger);
            try {
              await t.connect();
              await session.open();
            } finally {
              session.dispose();
            }
          },
          fresh: () => ssh(runnerStatus),
        });

      const entries = (await c.log()).length;

      // Status against the log's length, each on its own channel (as the client opens one), in runner homes
      // of their own with a 10-entry and a 10,000-entry log.
      const makeHome = async (name: string) => {
        const dir = `${resultDir}/${name}`;
        const setup = await target!.exec(
          `rm -rf ${shellQuote(dir)} && mkdir -p ${shellQuote(`${dir}/environments`)} && cp -r ${shellQuote(envDir)} ${shellQuote(`${dir}/environments/`)} && ${shellQuote(python)} ${shellQuote(`${runnerHome}/runner.pyz`)} --home ${shellQuote(dir)} setup --environment ${NOOP_ENVIRONMENT} --solution-dir ${shellQuote(`${dir}/solution`)} --json`,
        );
        if (setup.code !== 0) throw new Error(`Setting up ${dir} failed: ${setup.stderr || setup.stdout}`);
        return dir;
      };
      const script = `${resultDir}/make_score_log.py`;
      await target.writeFile(script, fs.readFileSync(path.join(__dirname, 'make_score_log.py')), 0o644);
      const makeLog = async (dir: string, count: number) => {
        const made = await target!.exec(
          `${shellQuote(python)} ${shellQuote(script)} ${shellQuote(`${runnerHome}/runner.pyz`)} ${shellQuote(dir)} ${count} 7.5`,
        );
        if (made.code !== 0) throw new Error(`Writing the ${count}-entry score log failed: ${made.stderr || made.stdout}`);
      };
      const boot = (home: string) =>
        `${shellQuote(python)} -I -S -c ${shellQuote(RUNNER_BOOT)} ${shellQuote(`${runnerHome}/runner.pyz`)} --home ${shellQuote(home)}`;
      const shortHome = want('status-10000') || want('startup') ? await makeHome('short-log') : '';
      if (shortHome) await makeLog(shortHome, SHORT_LOG_ENTRIES);
      let logLength = none;
      if (want('status-10000')) {
        const hugeHome = await makeHome('huge-log');
        await makeLog(hugeHome, HUGE_LOG_ENTRIES);
        const shortChannel = new RunnerChannel(target, `${boot(shortHome)} serve`, silentLogger);
        const hugeChannel = new RunnerChannel(target, `${boot(hugeHome)} serve`, silentLogger);
        try {
          await Promise.all([shortChannel.hello, hugeChannel.hello]);
          const statusOn = async (channel: RunnerChannel, written: number) => {
            const reply = await channel.request('status', {});
            const got = (reply.result as { entries?: number } | undefined)?.entries;
            if (reply.exit_code !== 0 || got !== written)
              throw new Error(`status on the channel: exit ${reply.exit_code}, ${got} entries where ${written} were written`);
          };
          log(`ssh: status with a ${HUGE_LOG_ENTRIES}-entry log against a ${SHORT_LOG_ENTRIES}-entry log, ${reps.status}× each, on channels`);
          logLength = await interleaved(reps.status, {
            huge: () => statusOn(hugeChannel, HUGE_LOG_ENTRIES),
            short: () => statusOn(shortChannel, SHORT_LOG_ENTRIES),
          });
        } finally {
          shortChannel.dispose();
          hugeChannel.dispose();
        }
      }

      // Start-up: the built runner (runner.pyz) against the runner as it was one compiled file, as the
      // client ran each, for the same status.
      const oldRunner = want('startup') ? singleFileRunner() : undefined;
      let startup: Record<string, number[]> | undefined;
      if (oldRunner) {
        const oldHome = `${resultDir}/single-file`;
        await target.writeFile(`${oldHome}/runner.py`, oldRunner, 0o644);
        const oneShot = async (command: string) => {
          const r = await target!.exec(command);
          if (r.code !== 0) throw new Error(`${command} failed: ${r.stderr || r.stdout}`);
        };
        const packaged = `${boot(shortHome)} status --json`;
        const single = `${shellQuote(python)} -I -S -c ${shellQuote(SINGLE_FILE_BOOT)} ${shellQuote(oldHome)} --home ${shellQuote(shortHome)} status --json`;
        await oneShot(single); // compiles it into __pycache__, as the first call on a VM did
        log(`ssh: one-shot status by runner.pyz against the compiled single-file runner, ${reps.status}× each`);
        startup = await interleaved(reps.status, { packaged: () => oneShot(packaged), single: () => oneShot(single) });
      } else if (want('startup')) {
        log('ssh: no git history here, so the single-file runner cannot be compared (start-up figure left out)');
      }

      let longStatus = none;
      if (want('status-500')) {
        // The end of an 8-hour session with 500 scores, in the client's own runner home.
        const made = await target.exec(
          `${shellQuote(python)} ${shellQuote(script)} ${shellQuote(`${runnerHome}/runner.pyz`)} ${shellQuote(runnerHome)} ${LONG_SESSION_ENTRIES} 7.5`,
        );
        if (made.code !== 0) throw new Error(`Writing the ${LONG_SESSION_ENTRIES}-entry score log failed: ${made.stderr || made.stdout}`);
        log(`ssh: runner status with a ${LONG_SESSION_ENTRIES}-entry log ${reps.status}× against python3 -c pass`);
        longStatus = await interleaved(reps.status, {
          client: () => c.status(),
          python: () => target!.exec('python3 -c pass'),
        });
      }
      const figures: Figure[] = [
        makeFigure('score-vs-mux', m('"Score now" to the entry, no-op scorer, runner client over SSH (its channel)', score.client!), {
          baseline: m('same scorer, OpenSSH multiplexed exec (ControlMaster)', score.mux!),
          target: { kind: 'ratio', max: 1.2 },
        }),
        makeFigure('score-vs-fresh', m('"Score now" to the entry (the same runs)', score.client!), {
          baseline: m('same scorer, fresh `ssh host scorer`', score.fresh!),
          target: { kind: 'ratio', max: 0.5 },
        }),
        makeFigure(
          'connect',
          m('connect and first status (connect, Session.open: runner and environment checked, setup answering the status, log)', connect.client!),
          {
            baseline: m('fresh `ssh host runner status`', connect.fresh!),
            target: { kind: 'ratio', max: 0.6 },
          },
        ),
        makeFigure('status', m(`runner status through the runner client on the open connection (log of ${entries} entries)`, status.client!), {
          baseline: m('`python3 -c pass` on the VM, same connection', status.python!),
          target: { kind: 'ratio', max: 0.5 },
          details: { python: `${python} ${pythonVersion}` },
        }),
        makeFigure(
          'status-500',
          m(
            `runner status through the runner client on the open connection (log of ${LONG_SESSION_ENTRIES} entries: the end of an 8-hour session)`,
            longStatus.client!,
          ),
          {
            baseline: m('`python3 -c pass` on the VM, same connection', longStatus.python!),
            target: { kind: 'ratio', max: 0.5 },
          },
        ),
        makeFigure('status-10000', m(`runner status on a channel, log of ${HUGE_LOG_ENTRIES.toLocaleString('en')} entries`, logLength.huge!), {
          baseline: m(`the same, log of ${SHORT_LOG_ENTRIES} entries`, logLength.short!),
          target: { kind: 'ratio', max: 1.1 },
        }),
        ...(startup
          ? [
              makeFigure('startup', m('one-shot `runner status` by the built runner (python3 -I -S, runner.pyz)', startup.packaged!), {
                baseline: m('the same by the runner as one compiled file (python3 -I -S, runner.py from __pycache__)', startup.single!),
                target: { kind: 'ratio', max: 1.0 },
                details: { python: `${python} ${pythonVersion}` },
              }),
            ]
          : []),
        makeFigure('round-trip', m('a trivial command (`true`) on the open connection (ssh2, no Nagle delay)', roundTrip.client!), {
          baseline: m('the same by OpenSSH multiplexed exec (ControlMaster)', roundTrip.mux!),
          target: { kind: 'ratio', max: 1.0 },
          note: 'A Nagle delay (a socket without TCP_NODELAY) would add about 40 ms to each command on the connection.',
        }),
      ];
      // Only the figures measured (BENCH_FIGURES): the others are built from no samples and left out.
      return figures.filter((f) => want(f.id as SshFigure));
    } finally {
      await run('ssh', ['-S', control, '-O', 'exit', ...sshArgs]).catch(() => undefined);
    }
  } finally {
    target?.dispose();
    await sshd.stop();
    fs.rmSync(control, { force: true });
  }
}
