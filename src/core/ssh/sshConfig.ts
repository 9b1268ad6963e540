// OpenSSH client configuration (~/.ssh/config): parsing, host listing and per-host resolution.
// Pure functions: all file access for `Include` goes through an injected reader, and bad input
// produces warnings, never exceptions.

import * as path from 'node:path';
import { hasWildcard, matchPatternList } from './hostPatterns';

export interface IncludedFile {
  path: string;
  /** The file's text; absent when it could not be read (then `error` says why). */
  text?: string;
  error?: string;
}

export interface SshConfigParseOptions {
  /** The local user's home folder, for `~` and for relative `Include` paths. */
  home: string;
  /** Where relative `Include` paths start; OpenSSH uses ~/.ssh for the user's file. */
  includeBase?: string;
  /** The name used in warnings, e.g. "~/.ssh/config". */
  fileName?: string;
  /**
   * Expands one absolute `Include` path (which may hold `*` and `?`) to the files it names, in
   * order. Without it, `Include` lines are skipped with a warning.
   */
  readInclude?: (absolutePattern: string) => IncludedFile[];
}

export interface SshConfigEntry {
  /** Lower-case keyword, e.g. "hostname". */
  keyword: string;
  args: string[];
  /** Every pattern list here must match the alias for the entry to apply (outer Host of an Include first). */
  when: string[][];
  file: string;
  line: number;
}

export interface SshHostBlock {
  patterns: string[];
  file: string;
  line: number;
}

export interface SshConfig {
  entries: SshConfigEntry[];
  hosts: SshHostBlock[];
  warnings: string[];
}

export type StrictHostKeyChecking = 'yes' | 'no' | 'ask' | 'accept-new';

export interface ResolvedJumpHost {
  /** The name as written in ProxyJump (matched against Host blocks). */
  alias: string;
  hostName: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** False when no IdentityFile applied and the OpenSSH default key paths were filled in. */
  identityFilesExplicit: boolean;
  identitiesOnly: boolean;
  userKnownHostsFiles: string[];
  strictHostKeyChecking: StrictHostKeyChecking;
  /** Seconds; 0 means off (the OpenSSH default). */
  serverAliveIntervalS: number;
  serverAliveCountMax: number;
  /** Seconds; undefined means the system default. */
  connectTimeoutS?: number;
}

export interface ResolvedSshHost extends ResolvedJumpHost {
  /** The first ProxyJump hop; undefined for a direct connection (or `ProxyJump none`). */
  proxyJump?: ResolvedJumpHost;
  /** Every hop to go through, in connection order (`proxyJump` first); empty for a direct connection. */
  jumpHosts: ResolvedJumpHost[];
  warnings: string[];
}

export interface ResolveOptions {
  home: string;
  /** The local user name: the login user when the config names none, and `%u`. */
  localUser: string;
  /** The login user when the config names none; defaults to `localUser`. */
  user?: string;
  /** For `%l`; defaults to "localhost". */
  localHost?: string;
}

const MAX_INCLUDE_DEPTH = 16;
/** Files one parse may include in all; stops a file that includes itself several times from exploding. */
const MAX_INCLUDED_FILES = 256;
const MAX_JUMP_DEPTH = 8;

// ---------------------------------------------------------------------------------------------
// Parsing

type SplitResult = { args: string[] } | { error: string };

/** Splits an argument string the way OpenSSH does: whitespace, quotes, `#` starting a comment. */
export function splitArgs(text: string): SplitResult {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i] ?? '')) i++;
    if (i >= text.length) break;
    if (text[i] === '#') break;
    let arg = '';
    while (i < text.length && !/\s/.test(text[i] ?? '')) {
      const c = text[i] as string;
      if (c === '"' || c === "'") {
        const end = text.indexOf(c, i + 1);
        if (end < 0) return { error: `unterminated ${c === '"' ? 'double' : 'single'} quote` };
        arg += text.slice(i + 1, end);
        i = end + 1;
      } else if (c === '\\' && i + 1 < text.length && /["'\\ ]/.test(text[i + 1] ?? '')) {
        arg += text[i + 1];
        i += 2;
      } else {
        arg += c;
        i++;
      }
    }
    args.push(arg);
  }
  return { args };
}

export function parseSshConfig(text: string, options: SshConfigParseOptions): SshConfig {
  const config: SshConfig = { entries: [], hosts: [], warnings: [] };
  const fileName = options.fileName ?? '~/.ssh/config';
  parseInto(config, String(text ?? ''), fileName, [], options, 0, { files: 0 });
  return config;
}

function parseInto(
  config: SshConfig,
  text: string,
  file: string,
  outerWhen: string[][],
  options: SshConfigParseOptions,
  depth: number,
  budget: { files: number },
): void {
  let when: string[][] = outerWhen;
  let skipping = false; // inside an unsupported Match block
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const where = `${file}:${lineNo}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    // `s`: the value may hold a lone CR or U+2028 (whitespace to splitArgs, as to OpenSSH); without it `.`
    // stops there, and backtracking over a long run of spaces before it takes cubic time.
    const m = /^([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+|$)(.*)$/s.exec(line);
    if (!m) {
      config.warnings.push(`${where}: cannot read "${truncate(line)}"; expected "Keyword value". The line was ignored.`);
      return;
    }
    const keyword = (m[1] as string).toLowerCase();
    const split = splitArgs(m[2] as string);
    if ('error' in split) {
      config.warnings.push(`${where}: ${split.error} in "${truncate(line)}". The line was ignored.`);
      return;
    }
    const args = split.args;

    if (keyword === 'host') {
      skipping = false;
      if (args.length === 0) config.warnings.push(`${where}: "Host" without a pattern matches nothing.`);
      config.hosts.push({ patterns: args, file, line: lineNo });
      when = [...outerWhen, args];
      return;
    }
    if (keyword === 'match') {
      if (args.length === 1 && args[0]?.toLowerCase() === 'all') {
        skipping = false;
        when = [...outerWhen, ['*']];
        return;
      }
      skipping = true;
      config.warnings.push(`${where}: "Match" blocks are not supported; the lines up to the next Host or Match line were ignored.`);
      return;
    }
    if (skipping) return;
    if (keyword === 'include') {
      includeFiles(config, args, where, when, options, depth, budget);
      return;
    }
    if (args.length === 0) {
      config.warnings.push(`${where}: "${m[1]}" has no value. The line was ignored.`);
      return;
    }
    config.entries.push({ keyword, args, when, file, line: lineNo });
  });
}

function includeFiles(
  config: SshConfig,
  args: string[],
  where: string,
  when: string[][],
  options: SshConfigParseOptions,
  depth: number,
  budget: { files: number },
): void {
  if (!options.readInclude) {
    config.warnings.push(`${where}: "Include" is not followed here; the included settings were ignored.`);
    return;
  }
  if (depth >= MAX_INCLUDE_DEPTH) {
    config.warnings.push(`${where}: "Include" nested more than ${MAX_INCLUDE_DEPTH} deep (a loop?); ignored.`);
    return;
  }
  const base = options.includeBase ?? path.posix.join(options.home, '.ssh');
  for (const arg of args) {
    const expanded = expandTilde(arg, options.home);
    const absolute = isAbsolute(expanded) ? expanded : joinPath(base, expanded);
    let files: IncludedFile[];
    try {
      files = options.readInclude(absolute);
    } catch (e) {
      config.warnings.push(`${where}: could not read Include "${arg}": ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    if (files.length === 0 && !/[*?]/.test(arg)) {
      config.warnings.push(`${where}: the included file ${absolute} does not exist; ignored.`);
    }
    for (const f of files) {
      if (f.text === undefined) {
        config.warnings.push(`${where}: could not read the included file ${f.path}: ${f.error ?? 'unreadable'}`);
        continue;
      }
      if (++budget.files > MAX_INCLUDED_FILES) {
        if (budget.files === MAX_INCLUDED_FILES + 1)
          config.warnings.push(`${where}: more than ${MAX_INCLUDED_FILES} files included in all (a loop?); the rest were ignored.`);
        return;
      }
      parseInto(config, f.text, f.path, when, options, depth + 1, budget);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host listing

/** Concrete host aliases (no wildcards or negations), in file order, for a host picker. */
export function listHosts(config: SshConfig): string[] {
  return listHostSources(config).map((h) => h.alias);
}

/** The concrete aliases, each with the file that defines it (an included file names itself, not the main one). */
export function listHostSources(config: SshConfig): { alias: string; file: string }[] {
  const seen = new Set<string>();
  const out: { alias: string; file: string }[] = [];
  for (const block of config.hosts) {
    for (const p of block.patterns) {
      if (hasWildcard(p) || seen.has(p.toLowerCase())) continue;
      seen.add(p.toLowerCase());
      out.push({ alias: p, file: block.file });
    }
  }
  return out;
}

/** A config file's path as the host picker names it: under the home folder with "~". */
export function configFileLabel(file: string, home: string): string {
  const h = home.replace(/[/\\]+$/, '');
  return h && (file === h || file.startsWith(`${h}/`) || file.startsWith(`${h}\\`)) ? `~${file.slice(h.length)}` : file;
}

// ---------------------------------------------------------------------------------------------
// Resolution

interface Collected {
  values: Map<string, SshConfigEntry>;
  identityFiles: SshConfigEntry[];
}

function collect(config: SshConfig, alias: string): Collected {
  const values = new Map<string, SshConfigEntry>();
  const identityFiles: SshConfigEntry[] = [];
  for (const entry of config.entries) {
    if (!entry.when.every((patterns) => matchPatternList(patterns, alias))) continue;
    if (entry.keyword === 'identityfile') identityFiles.push(entry);
    else if (!values.has(entry.keyword)) values.set(entry.keyword, entry); // first value wins
  }
  return { values, identityFiles };
}

/** Resolves the settings OpenSSH would use for `ssh alias`. Never throws; problems become warnings. */
export function resolveHost(config: SshConfig, alias: string, options: ResolveOptions): ResolvedSshHost {
  const warnings: string[] = [];
  const target = resolveOne(config, alias, options, warnings);
  const { values } = collect(config, alias);
  const jumpHosts = resolveJumps(config, alias, values.get('proxyjump'), options, warnings, 0);
  const proxyCommand = values.get('proxycommand');
  if (proxyCommand && jumpHosts.length === 0 && proxyCommand.args[0]?.toLowerCase() !== 'none') {
    warnings.push(
      `${proxyCommand.file}:${proxyCommand.line}: ProxyCommand is not supported; use ProxyJump instead. Connecting directly to ${target.hostName}.`,
    );
  }
  return { ...target, proxyJump: jumpHosts[0], jumpHosts, warnings };
}

function resolveOne(
  config: SshConfig,
  alias: string,
  options: ResolveOptions,
  warnings: string[],
  overrides: { user?: string; port?: number } = {},
): ResolvedJumpHost {
  const { values, identityFiles } = collect(config, alias);
  const at = (e: SshConfigEntry) => `${e.file}:${e.line}`;
  const first = (key: string) => values.get(key)?.args[0];

  let hostName = alias;
  const hn = values.get('hostname');
  if (hn) hostName = expandTokens(hn.args[0] as string, { '%': '%', h: alias }, warnings, at(hn));

  let port = 22;
  const portEntry = values.get('port');
  if (overrides.port !== undefined) port = overrides.port;
  else if (portEntry) {
    const p = parsePort(portEntry.args[0] as string);
    if (p === undefined) warnings.push(`${at(portEntry)}: Port "${portEntry.args[0]}" is not a number from 1 to 65535; using 22.`);
    else port = p;
  }

  const user = overrides.user ?? first('user') ?? options.user ?? options.localUser;
  const tokens: Record<string, string> = {
    '%': '%',
    d: options.home,
    u: options.localUser,
    l: options.localHost ?? 'localhost',
    h: hostName,
    r: user,
    p: String(port),
    n: alias,
  };

  const expandPath = (value: string, where: string): string => {
    const expanded = expandTilde(expandTokens(value, tokens, warnings, where), options.home);
    if (isAbsolute(expanded)) return expanded;
    warnings.push(`${where}: "${value}" is a relative path; it was taken relative to your home folder.`);
    return joinPath(options.home, expanded);
  };

  const explicitKeys = identityFiles.map((e) => expandPath(e.args[0] as string, at(e)));
  const identityFilesExplicit = explicitKeys.length > 0;
  const identityFileList = identityFilesExplicit ? unique(explicitKeys) : ['id_rsa', 'id_ecdsa', 'id_ed25519'].map((n) => joinPath(options.home, '.ssh', n));

  let userKnownHostsFiles = [joinPath(options.home, '.ssh', 'known_hosts'), joinPath(options.home, '.ssh', 'known_hosts2')];
  const khf = values.get('userknownhostsfile');
  if (khf) {
    userKnownHostsFiles = khf.args[0]?.toLowerCase() === 'none' ? [] : khf.args.map((a) => expandPath(a, at(khf)));
  }

  return {
    alias,
    hostName,
    port,
    user,
    identityFiles: identityFileList,
    identityFilesExplicit,
    identitiesOnly: parseYesNo(values.get('identitiesonly'), false, warnings),
    userKnownHostsFiles,
    strictHostKeyChecking: parseStrict(values.get('stricthostkeychecking'), warnings),
    serverAliveIntervalS: parseCount(values.get('serveraliveinterval'), warnings) ?? 0,
    serverAliveCountMax: parseCount(values.get('serveralivecountmax'), warnings) ?? 3,
    connectTimeoutS: parseCount(values.get('connecttimeout'), warnings),
  };
}

function resolveJumps(
  config: SshConfig,
  forAlias: string,
  entry: SshConfigEntry | undefined,
  options: ResolveOptions,
  warnings: string[],
  depth: number,
): ResolvedJumpHost[] {
  if (!entry || entry.args[0]?.toLowerCase() === 'none') return [];
  if (depth >= MAX_JUMP_DEPTH) {
    warnings.push(`${entry.file}:${entry.line}: ProxyJump chains more than ${MAX_JUMP_DEPTH} hops deep from ${forAlias} (a loop?); stopped there.`);
    return [];
  }
  const hops: ResolvedJumpHost[] = [];
  const specs = entry.args
    .join(',')
    .split(',')
    .filter((s) => s !== '');
  specs.forEach((spec, i) => {
    const parsed = parseJumpSpec(spec);
    if ('error' in parsed) {
      warnings.push(`${entry.file}:${entry.line}: ProxyJump "${spec}": ${parsed.error}. That hop was ignored.`);
      return;
    }
    if (i === 0) {
      // The first hop is reached the way `ssh hop` would reach it, including its own ProxyJump.
      const own = collect(config, parsed.host).values.get('proxyjump');
      if (own && parsed.host.toLowerCase() !== forAlias.toLowerCase()) {
        hops.push(...resolveJumps(config, parsed.host, own, options, warnings, depth + 1));
      }
    }
    hops.push(resolveOne(config, parsed.host, options, warnings, { user: parsed.user, port: parsed.port }));
  });
  return hops;
}

/** Reads `[user@]host[:port]` or `ssh://[user@]host[:port]`, with `[v6]` addresses allowed. */
export function parseJumpSpec(spec: string): { host: string; user?: string; port?: number } | { error: string } {
  let s = spec.trim();
  if (s.startsWith('ssh://')) s = s.slice(6).replace(/\/$/, '');
  let user: string | undefined;
  const atIdx = s.lastIndexOf('@');
  if (atIdx >= 0) {
    user = s.slice(0, atIdx);
    s = s.slice(atIdx + 1);
    if (user === '') return { error: 'the user name before "@" is empty' };
  }
  let host = s;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
  if (bracket) {
    host = bracket[1] as string;
    portText = bracket[2];
  } else if ((s.match(/:/g) ?? []).length === 1) {
    [host, portText] = s.split(':') as [string, string];
  }
  if (host === '') return { error: 'the host name is empty' };
  if (portText === undefined) return { host, user };
  const port = parsePort(portText);
  if (port === undefined) return { error: `port "${portText}" is not a number from 1 to 65535` };
  return { host, user, port };
}

// ---------------------------------------------------------------------------------------------
// Value helpers

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function parseYesNo(entry: SshConfigEntry | undefined, fallback: boolean, warnings: string[]): boolean {
  if (!entry) return fallback;
  const v = (entry.args[0] ?? '').toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  warnings.push(`${entry.file}:${entry.line}: expected "yes" or "no" for ${entry.keyword}, got "${entry.args[0]}".`);
  return fallback;
}

function parseStrict(entry: SshConfigEntry | undefined, warnings: string[]): StrictHostKeyChecking {
  if (!entry) return 'ask';
  const v = (entry.args[0] ?? '').toLowerCase();
  if (v === 'yes' || v === 'true') return 'yes';
  if (v === 'no' || v === 'false' || v === 'off') return 'no';
  if (v === 'ask' || v === 'accept-new') return v;
  warnings.push(`${entry.file}:${entry.line}: StrictHostKeyChecking "${entry.args[0]}" is not yes, no, ask or accept-new; using ask.`);
  return 'ask';
}

function parseCount(entry: SshConfigEntry | undefined, warnings: string[]): number | undefined {
  if (!entry) return undefined;
  const v = entry.args[0] ?? '';
  if (/^\d+$/.test(v)) return Number(v);
  warnings.push(`${entry.file}:${entry.line}: ${entry.keyword} "${v}" is not a whole number; ignored.`);
  return undefined;
}

/** Replaces `%x` tokens; unknown tokens stay as written, with a warning. */
export function expandTokens(value: string, tokens: Record<string, string>, warnings: string[], where: string): string {
  return value.replace(/%(.)?/g, (whole, key: string | undefined) => {
    if (key !== undefined && Object.prototype.hasOwnProperty.call(tokens, key)) return tokens[key] as string;
    warnings.push(`${where}: the token "${whole}" in "${value}" is not supported; it was left as written.`);
    return whole;
  });
}

export function expandTilde(value: string, home: string): string {
  if (value === '~') return home;
  if (value.startsWith('~/')) return joinPath(home, value.slice(2));
  return value;
}

function isAbsolute(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\');
}

function joinPath(...parts: string[]): string {
  // Keep the home folder's own separator style (a Windows home stays Windows-like).
  const first = parts[0] ?? '';
  return /^[A-Za-z]:\\/.test(first) || first.startsWith('\\\\') ? path.win32.join(...parts) : path.posix.join(...parts);
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
