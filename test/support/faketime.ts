// A VM whose clock is off: a private sshd that puts libfaketime (Debian package `faketime`) into the
// environment of every session it starts, so the login shell, the runner, its detached scoring jobs
// and `date` all read the shifted clock, while sshd and this machine keep the real one.
//
// Why not `faketime -f +2h sshd`: sshd builds each session's environment from scratch, so the
// LD_PRELOAD that faketime sets on sshd never reaches the login shell (checked: `date` over such an
// sshd shows the real time). sshd_config's SetEnv is what reaches the sessions.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { startSshd, type Sshd, type SshdOptions } from './sshd';

const LIBRARY = 'libfaketime.so.1';

/** The libfaketime shared object, wherever the distribution put it. */
export function libfaketimePath(): string {
  const candidates: string[] = [];
  for (const lib of ['/usr/lib', '/usr/local/lib', '/usr/lib64']) {
    candidates.push(path.join(lib, 'faketime', LIBRARY));
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(lib);
    } catch {
      continue;
    }
    // Debian keeps it under the multiarch folder, e.g. /usr/lib/x86_64-linux-gnu/faketime/.
    for (const entry of entries) candidates.push(path.join(lib, entry, 'faketime', LIBRARY));
  }
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) {
    throw new Error(
      `${LIBRARY} was not found (looked in ${candidates.length} places under /usr/lib, /usr/local/lib and /usr/lib64). ` +
        'Install the Debian package faketime (as root: apt-get install -y faketime; scripts/install-test-deps.sh installs it).',
    );
  }
  return found;
}

/**
 * A private sshd whose sessions see the clock moved by `shift`, in libfaketime's relative form
 * ("+2h", "-2h", "+90s"). libfaketime moves the monotonic clock too; that changes no interval. (Leaving
 * it alone with FAKETIME_DONT_FAKE_MONOTONIC=1 breaks Python's time.sleep with EINVAL in 0.9.10.)
 */
export async function startSshdWithClockShift(shift: string, options: SshdOptions = {}): Promise<Sshd> {
  if (!/^[+-]\d+(\.\d+)?[smhdy]?$/.test(shift)) {
    throw new Error(`Clock shift "${shift}" is not in libfaketime's relative form: a sign, a number and a unit, e.g. "+2h" or "-90s".`);
  }
  if ((options.extraConfig ?? []).some((line) => /^\s*SetEnv\b/i.test(line))) {
    // sshd keeps only the first SetEnv line it reads, so a second one would silently undo the shift.
    throw new Error('startSshdWithClockShift sets SetEnv itself; pass the variables you need in its shift instead of another SetEnv line.');
  }
  const setEnv = `SetEnv LD_PRELOAD=${libfaketimePath()} FAKETIME=${shift}`;
  return startSshd({ ...options, extraConfig: [setEnv, ...(options.extraConfig ?? [])] });
}

/** Parses libfaketime's relative form into milliseconds ("+2h" -> 7200000). */
export function shiftMs(shift: string): number {
  const m = /^([+-])(\d+(?:\.\d+)?)([smhdy]?)$/.exec(shift);
  if (!m) throw new Error(`Clock shift "${shift}" is not in libfaketime's relative form (e.g. "+2h").`);
  const unitS = { '': 1, s: 1, m: 60, h: 3600, d: 86400, y: 365 * 86400 }[m[3] as '' | 's' | 'm' | 'h' | 'd' | 'y'];
  return (m[1] === '-' ? -1 : 1) * Number(m[2]) * unitS * 1000;
}

const SHM_DIR = '/dev/shm';
const SHM_NAME = /^(faketime_shm_|sem\.faketime_sem_)\d+$/;

/**
 * libfaketime's shared memory and semaphores (in /dev/shm) that exist now. The first process of each
 * SSH session creates a pair and removes it only if it exits normally, not when it execs (as a login
 * shell running one command does), so every session leaves one pair behind.
 */
export function faketimeShmNames(): Set<string> {
  try {
    return new Set(fs.readdirSync(SHM_DIR).filter((name) => SHM_NAME.test(name)));
  } catch {
    return new Set();
  }
}

/** Removes the pairs that appeared since `before` was taken. */
export function removeFaketimeShm(before: ReadonlySet<string>): number {
  let removed = 0;
  for (const name of faketimeShmNames()) {
    if (before.has(name)) continue;
    fs.rmSync(path.join(SHM_DIR, name), { force: true });
    removed++;
  }
  return removed;
}
