// A study on loopback: many VMs, each a runner home of its own with a real session made by the runner,
// behind a few private sshd instances (as many homes per server as asked). A host is reached exactly as
// an organiser reaches a VM: over SSH, with its host key pinned, through the runner named in its spec.
// Used by the watch tests (a dozen hosts) and by `npm run bench` (a hundred).

import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUNNER_BOOT } from '../../src/core/runnerClient';
import { shellQuote } from '../../src/core/target';
import type { HostSpec } from '../../src/organiser/hosts';
import { deepMerge, FIXTURE_ENVIRONMENTS, RUNNER_PATH, runRunner } from './runner';
import { loginUser, startSshd, type Sshd } from './sshd';

export interface HostPlan {
  /** The session's state when the study is ready. */
  state: 'not_started' | 'running' | 'paused' | 'ended';
  /** Scoring runs made while running, each the text of score.txt ("nan" gives no score). */
  scores?: string[];
  /** Edit the first entry's score after it was written, so the log no longer verifies. */
  tamper?: boolean;
}

export interface StudyHost {
  index: number;
  spec: HostSpec;
  /** The runner home (owned by the login user). */
  home: string;
  sshd: Sshd;
  plan: HostPlan;
}

export interface Study {
  root: string;
  sshds: Sshd[];
  hosts: StudyHost[];
  specs: HostSpec[];
  environment: string;
  /** A digest of a host's runner home (its session, score log, events, jobs), to show that reading changed nothing. */
  digest(index: number): string;
  stop(): Promise<void>;
}

export interface StudyOptions {
  hosts: number;
  servers: number;
  plan: (index: number) => HostPlan;
  /** Runner homes set up at the same time (default 4). */
  concurrency?: number;
}

const ENVIRONMENT = 'slow-scorer';

function digestDir(dir: string): string {
  const hash = crypto.createHash('sha256');
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      // Not the session's records: Python's compiled runner, and what the runner keeps for itself on every
      // command (the latest time it saw, to notice a clock set back; where its reading of the score log got to;
      // up to which job recovery has looked; its record of the manifest it last checked).
      if (['__pycache__', 'clock.json', 'log-checkpoint.json', 'jobs-recovered.json', 'manifest-checked.json'].includes(name)) continue;
      const st = fs.lstatSync(p);
      hash.update(`${path.relative(dir, p)}\0${st.mode}\0`);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) hash.update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

async function makeSession(home: string, solution: string, plan: HostPlan): Promise<void> {
  const run = async (args: string[]) => {
    const r = await runRunner(home, [...args, '--json']);
    if (r.code !== 0) throw new Error(`runner ${args.join(' ')} in ${home} exited ${r.code}: ${r.stdout}${r.stderr}`);
  };
  await run(['setup', '--environment', ENVIRONMENT, '--solution-dir', solution]);
  if (plan.state === 'not_started') return;
  await run(['start']);
  for (const s of plan.scores ?? []) {
    fs.writeFileSync(path.join(solution, 'score.txt'), `${s}\n`);
    await run(['score', '--follow']);
  }
  if (plan.tamper) {
    const file = path.join(home, 'state', 'score.log.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const entry = JSON.parse(lines[0]!) as { score: number | null };
    entry.score = (entry.score ?? 0) + 10;
    lines[0] = JSON.stringify(entry);
    fs.writeFileSync(file, lines.join('\n'));
  }
  if (plan.state === 'paused') await run(['pause']);
  if (plan.state === 'ended') await run(['end', '--yes']);
}

/** Starts the servers and makes every runner home; needs root (the homes are handed to the login user). */
export async function startStudy(o: StudyOptions): Promise<Study> {
  const { user, home: userHome } = loginUser();
  const root = path.join(userHome, 'study-watch');
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  fs.copyFileSync(RUNNER_PATH, path.join(root, 'runner.pyz'));
  const environment = path.join(root, 'environment');
  fs.cpSync(path.join(FIXTURE_ENVIRONMENTS, ENVIRONMENT), environment, { recursive: true });
  const manifestPath = path.join(environment, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(manifestPath, JSON.stringify(deepMerge(manifest, { time_limit_s: 8 * 3600 }), null, 2));
  fs.writeFileSync(path.join(environment, 'solution', 'delay_s'), '0\n');

  const sshds: Sshd[] = [];
  const study: Study = {
    root,
    sshds,
    hosts: [],
    specs: [],
    environment: ENVIRONMENT,
    digest: (i) => digestDir(study.hosts[i]!.home),
    async stop() {
      await Promise.all(sshds.map((s) => s.stop()));
      fs.rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
  try {
    for (let s = 0; s < o.servers; s++) {
      // Many VMs behind one server is the test's doing, not a VM's: let all of them connect at once.
      sshds.push(await startSshd({ extraConfig: ['MaxStartups 200:30:400', 'MaxSessions 64'] }));
    }
    for (let i = 0; i < o.hosts; i++) {
      const name = `h${String(i).padStart(3, '0')}`;
      const home = path.join(root, name);
      const sshd = sshds[i % sshds.length]!;
      const runner = `python3 -I -S -c ${shellQuote(RUNNER_BOOT)} ${shellQuote(path.join(root, 'runner.pyz'))} --home ${shellQuote(home)}`;
      study.hosts.push({
        index: i,
        home,
        sshd,
        plan: o.plan(i),
        spec: {
          participant: `participant-${String(i).padStart(3, '0')}`,
          host: sshd.host,
          port: sshd.port,
          user,
          fingerprint: sshd.hostFingerprint,
          identityFile: sshd.clientKeyPath,
          protectedMode: false,
          runnerCommand: runner,
          environment: ENVIRONMENT,
          source: `study:${i + 1}`,
        },
      });
    }
    study.specs = study.hosts.map((h) => h.spec);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < study.hosts.length; i = next++) {
        const h = study.hosts[i]!;
        fs.mkdirSync(path.join(h.home, 'environments'), { recursive: true });
        fs.cpSync(environment, path.join(h.home, 'environments', ENVIRONMENT), { recursive: true });
        const solution = path.join(h.home, 'solution');
        await makeSession(h.home, solution, h.plan);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 4) }, worker));
    execFileSync('chown', ['-R', `${user}:${user}`, root], { stdio: 'pipe' });
    return study;
  } catch (e) {
    await study.stop();
    throw e;
  }
}

/** A host's session profile, as the organiser hands it to the participant; named after the participant unless told. */
export function sessionProfile(spec: HostSpec, name = spec.participant): Record<string, unknown> {
  return {
    name,
    host: spec.host,
    port: spec.port,
    user: spec.user,
    host_key_fingerprint: spec.fingerprint,
    environment: spec.environment,
    protected: false,
    identity_file: spec.identityFile,
    runner_command: spec.runnerCommand,
  };
}
