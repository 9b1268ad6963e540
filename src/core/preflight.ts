// The checks a participant sees before the clock starts.
import { formatDuration } from './clock';
import { errorMessage } from './errors';
import { RUNNER_VERSION, type RunnerStatus } from './runnerProtocol';
import { shellQuote, type Target } from './target';

export type CheckResult = 'pass' | 'warn' | 'fail';

export interface PreflightCheck {
  name: string;
  result: CheckResult;
  detail: string;
}

export const DEADLINE_RULE = 'A scoring job started before the deadline counts, even when it finishes after it. After the deadline, Score now is closed.';

/** Clock offsets beyond this are worth a word: the countdown is still right, but the participant should know. */
const OFFSET_WARN_MS = 60_000;

export async function runPreflight(target: Target, status: RunnerStatus, offsetMs: number, hostKeyNote: string): Promise<PreflightCheck[]> {
  const checks: PreflightCheck[] = [];
  const env = status.environment;
  checks.push({ name: 'Connection', result: 'pass', detail: `${target.label}. ${hostKeyNote}` });
  checks.push(
    status.runner_version === RUNNER_VERSION
      ? { name: 'Runner', result: 'pass', detail: `version ${status.runner_version}, ${status.mode} mode` }
      : { name: 'Runner', result: 'fail', detail: `version ${status.runner_version}, but ${RUNNER_VERSION} is needed` },
  );
  checks.push({ name: 'Environment', result: 'pass', detail: `${env.title} (${env.id} ${env.version}), time limit ${formatDuration(env.time_limit_s)}` });
  if (env.calibration_pending) {
    checks.push({
      name: 'Calibration',
      result: 'warn',
      detail: `not yet calibrated on its GPU: the starting and reference scores are estimates (${env.calibration_pending}), so normalised scores are provisional; your own scores are measured as usual`,
    });
  }
  checks.push(await checkGpus(target, env.gpus, env.gpu_model));
  checks.push(await checkDisk(target, status.solution_dir, env.min_free_disk_gb));
  const offsetS = Math.round(offsetMs / 1000);
  checks.push({
    name: 'VM clock',
    result: Math.abs(offsetMs) > OFFSET_WARN_MS ? 'warn' : 'pass',
    detail:
      Math.abs(offsetMs) > OFFSET_WARN_MS
        ? `the VM's clock is ${Math.abs(offsetS)} s ${offsetS > 0 ? 'ahead of' : 'behind'} this machine's; the countdown follows the VM, so it is still right`
        : `within ${Math.max(1, Math.abs(offsetS))} s of this machine's clock`,
  });
  return checks;
}

export function preflightPasses(checks: readonly PreflightCheck[]): boolean {
  return checks.every((c) => c.result !== 'fail');
}

export function parseNvidiaSmi(output: string): string[] {
  return output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

async function checkGpus(target: Target, needed: number, model: string | null): Promise<PreflightCheck> {
  if (needed === 0) return { name: 'GPU', result: 'pass', detail: 'this environment needs no GPU' };
  try {
    const r = await target.exec('nvidia-smi --query-gpu=name --format=csv,noheader');
    if (r.code !== 0) {
      return {
        name: 'GPU',
        result: 'fail',
        detail: `nvidia-smi failed (${(r.stderr || r.stdout).trim().slice(0, 200) || `exit ${r.code}`}); ${needed} GPU(s) needed`,
      };
    }
    const gpus = parseNvidiaSmi(r.stdout);
    const matching = model ? gpus.filter((g) => g.toLowerCase().includes(model.toLowerCase())) : gpus;
    const want = `${needed}${model ? ` ${model}` : ''} GPU${needed > 1 ? 's' : ''}`;
    if (matching.length < needed) {
      return { name: 'GPU', result: 'fail', detail: `needs ${want}, found ${gpus.length ? gpus.join(', ') : 'none'}` };
    }
    return { name: 'GPU', result: 'pass', detail: `${matching.length} visible: ${matching.join(', ')}` };
  } catch (e) {
    return { name: 'GPU', result: 'fail', detail: `could not run nvidia-smi: ${errorMessage(e)}` };
  }
}

export function parseDfAvailableKb(output: string): number | undefined {
  const last = output.trim().split('\n').pop() ?? '';
  const fields = last.trim().split(/\s+/);
  const available = Number(fields[3]);
  return Number.isFinite(available) ? available : undefined;
}

async function checkDisk(target: Target, dir: string, minFreeGb: number): Promise<PreflightCheck> {
  try {
    // The solution folder may not exist yet on a fresh VM: df its nearest existing parent.
    const r = await target.exec(`d=${shellQuote(dir)}; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d"`);
    const kb = r.code === 0 ? parseDfAvailableKb(r.stdout) : undefined;
    if (kb === undefined) return { name: 'Disk', result: 'warn', detail: `could not read the free space (${r.stderr.trim().slice(0, 200)})` };
    const gb = kb / 1024 / 1024;
    return {
      name: 'Disk',
      result: gb < minFreeGb ? 'fail' : 'pass',
      detail: `${gb.toFixed(1)} GB free for the solution folder${gb < minFreeGb ? `; ${minFreeGb} GB needed` : ''}`,
    };
  } catch (e) {
    return { name: 'Disk', result: 'warn', detail: `could not check: ${errorMessage(e)}` };
  }
}
