// OpenSSH host-pattern matching, shared by ssh_config `Host` lines and known_hosts host lists.

/** Matches one glob pattern (`*` any run, `?` one character) against a name, case-insensitively. */
export function matchGlob(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const s = name.toLowerCase();
  // Iterative matcher with single-star backtracking: linear enough for host names, no regex escaping.
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    const pc = p[pi];
    if (pc === '?' || (pc !== undefined && pc !== '*' && pc === s[si])) {
      pi++;
      si++;
    } else if (pc === '*') {
      starP = pi++;
      starS = si;
    } else if (starP >= 0) {
      pi = starP + 1;
      si = ++starS;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * OpenSSH pattern-list semantics: the list matches when at least one plain pattern matches and
 * no negated (`!pattern`) one does. A list of only negations never matches.
 */
export function matchPatternList(patterns: readonly string[], name: string): boolean {
  let positive = false;
  for (const raw of patterns) {
    if (raw.startsWith('!')) {
      if (matchGlob(raw.slice(1), name)) return false;
    } else if (!positive && matchGlob(raw, name)) {
      positive = true;
    }
  }
  return positive;
}

export function hasWildcard(pattern: string): boolean {
  return /[*?!]/.test(pattern);
}
