// The VM over SSH: one ssh2 connection reused for every command, host keys always verified,
// keepalive on, and automatic reconnection that never prompts the participant.

import * as os from 'node:os';
import * as path from 'node:path';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { OutputCollector, type ConnectionState, type ExecOptions, type ExecResult, type Target } from '../target';
import type { AuthCallbacks } from './auth';
import { type ConnectionSettings, hopLabel, type OpenConnection, openConnection, type SshHop } from './connection';
import { parsePinnedFingerprint } from './hostKey';
import type { UnknownHostInfo } from './hostTrust';
import { SshError, type SshLogger, silentLogger } from './sshError';

export interface ReconnectPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Automatic attempts after a drop before giving up; 0 means no limit. */
  maxAttempts: number;
}

export interface SshTargetOptions extends AuthCallbacks {
  /** The host as the participant names it (an alias or an address). */
  host: string;
  /** The address to connect to; defaults to `host`. */
  hostName?: string;
  port?: number;
  user: string;
  identityFiles?: readonly string[];
  /** Where identityFiles came from (see profileKeys.ts), for the message when none of them exists. */
  keySource?: string;
  /** An ssh-agent socket or "pageant"; default SSH_AUTH_SOCK (pageant on Windows); false for none. */
  agent?: string | false;
  /** ProxyJump: the jump host, or a chain of them in connection order. */
  jump?: SshHop | readonly SshHop[];
  /** "SHA256:..." from the connection profile; when given, only this host key is accepted. */
  pinnedFingerprint?: string;
  /** known_hosts files to trust (read only); default ~/.ssh/known_hosts. */
  knownHostsFiles?: readonly string[];
  /** The extension's own known_hosts file: read, and keys the participant accepts are added to it. */
  acceptedHostsFile?: string;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Limit for TCP connect + SSH handshake + authentication, not counting time spent in prompts. */
  readyTimeoutMs?: number;
  reconnect?: Partial<ReconnectPolicy>;
  logger?: SshLogger;
  /** Asked when a host key is in no known_hosts file and nothing is pinned; true trusts and records it. */
  confirmUnknownHost?: (info: UnknownHostInfo) => Promise<boolean>;
}

/** Bounded exponential backoff with ±25% jitter, so many clients do not retry in step. */
export function reconnectDelayMs(attempt: number, policy: ReconnectPolicy, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(Math.min(policy.maxDelayMs, base * (0.75 + 0.5 * random())));
}

interface Live {
  open: OpenConnection;
  client: Client;
  /** Set once the link is gone; commands still running then have an unknown outcome. */
  lost: boolean;
  sftp?: Promise<SFTPWrapper>;
  home?: Promise<string>;
}

const ABORT_KILL_AFTER_MS = 2000;

export class SshTarget implements Target {
  readonly kind = 'ssh' as const;
  readonly label: string;

  private readonly hops: SshHop[];
  private readonly settings: ConnectionSettings;
  private readonly policy: ReconnectPolicy;
  private readonly logger: SshLogger;
  private readonly configError?: SshError;
  private readonly passphraseCache = new Map<string, string>();
  private readonly seenKeys = new Map<string, Buffer>();
  private readonly listeners = new Set<(state: ConnectionState) => void>();

  private current: ConnectionState = { kind: 'disconnected' };
  private live?: Live;
  /** The attempt under way, interactive or automatic. */
  private inFlight?: Promise<void>;
  /** The participant's connect() under way. */
  private connecting?: Promise<void>;
  /** Bumped to cancel a running reconnect loop. */
  private generation = 0;
  private wake?: () => void;
  private disposed = false;

  constructor(options: SshTargetOptions) {
    const port = options.port ?? 22;
    this.label = `${options.user}@${options.host}:${port}`;
    this.logger = options.logger ?? silentLogger;
    this.policy = {
      initialDelayMs: options.reconnect?.initialDelayMs ?? 1000,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 30000,
      maxAttempts: options.reconnect?.maxAttempts ?? 0,
    };

    let configError: SshError | undefined;
    const pin = (text: string | undefined, who: string): string | undefined => {
      if (text === undefined || text.trim() === '') return undefined;
      const parsed = parsePinnedFingerprint(text);
      if (parsed.ok) return parsed.fingerprint;
      configError ??= new SshError('config', `The pinned fingerprint for ${who}: ${parsed.error}`, false);
      return undefined;
    };
    const jumps = options.jump === undefined ? [] : Array.isArray(options.jump) ? [...(options.jump as readonly SshHop[])] : [options.jump as SshHop];
    this.hops = [
      ...jumps.map((j) => ({ ...j, pinnedFingerprint: pin(j.pinnedFingerprint, hopLabel(j)) })),
      {
        host: options.host,
        hostName: options.hostName,
        port,
        user: options.user,
        identityFiles: options.identityFiles,
        keySource: options.keySource,
        pinnedFingerprint: pin(options.pinnedFingerprint, this.label),
      },
    ];
    this.configError = configError;
    const defaultAgent = process.platform === 'win32' ? 'pageant' : process.env.SSH_AUTH_SOCK || undefined;
    this.settings = {
      agent: options.agent === false ? undefined : (options.agent ?? defaultAgent),
      knownHostsFiles: [...new Set(options.knownHostsFiles ?? [path.join(os.homedir(), '.ssh', 'known_hosts')])].filter((f) => f !== options.acceptedHostsFile),
      acceptedHostsFile: options.acceptedHostsFile,
      keepaliveIntervalMs: options.keepaliveIntervalMs ?? 15000,
      keepaliveCountMax: options.keepaliveCountMax ?? 3,
      readyTimeoutMs: options.readyTimeoutMs ?? 20000,
      askPassphrase: options.askPassphrase,
      keyboardInteractive: options.keyboardInteractive,
      confirmUnknownHost: options.confirmUnknownHost,
      logger: this.logger,
    };
  }

  get state(): ConnectionState {
    return this.current;
  }

  onStateChange(listener: (state: ConnectionState) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /**
   * Connects, prompting the participant if needed (passphrase, unknown host key). Resolves once
   * connected; rejects with an SshError, leaving the state 'failed'. Calling it while connected
   * does nothing; while a reconnect loop waits, it stops the loop and tries now.
   */
  connect(): Promise<void> {
    // Callers at the same time share one attempt (and one set of prompts).
    this.connecting ??= this.connectOnce().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connectOnce(): Promise<void> {
    if (this.disposed) throw new SshError('config', `The connection to ${this.label} was closed; open a new one.`, false);
    if (this.configError) {
      this.setState({ kind: 'failed', reason: this.configError.message, retryable: false });
      throw this.configError;
    }
    if (this.live) return;
    if (this.inFlight) {
      // An automatic attempt is under way: its success is as good as ours.
      await this.inFlight.catch(() => undefined);
      if (this.live) return;
    }
    this.stopReconnecting();
    const attempt = this.attempt(true, 1);
    this.inFlight = attempt;
    try {
      await attempt;
    } catch (e) {
      const err = toSshError(e);
      if (!this.disposed) this.setState({ kind: 'failed', reason: err.message, retryable: err.retryable });
      throw err;
    } finally {
      if (this.inFlight === attempt) this.inFlight = undefined;
    }
  }

  /** Skips the wait before the next automatic reconnection attempt (does nothing otherwise). */
  reconnectNow(): void {
    this.wake?.();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.stopReconnecting();
    const live = this.live;
    this.live = undefined;
    if (live) {
      live.lost = true;
      live.open.end();
    }
    this.setState({ kind: 'disconnected', reason: 'Closed.' });
    this.listeners.clear();
    this.passphraseCache.clear();
  }

  // -------------------------------------------------------------------------------------------
  // Connection life cycle

  private setState(state: ConnectionState): void {
    this.current = state;
    for (const l of [...this.listeners]) {
      try {
        l(state);
      } catch (e) {
        this.logger.error(`A connection-state listener failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  private async attempt(interactive: boolean, n: number): Promise<void> {
    this.setState({ kind: 'connecting', attempt: n });
    const via = this.hops.length > 1 ? ` via ${this.hops.slice(0, -1).map(hopLabel).join(' -> ')}` : '';
    this.logger.info(`Connecting to ${this.label}${via}${interactive ? '' : ` (automatic attempt ${n})`}`);
    const started = Date.now();
    const open = await openConnection(this.hops, this.settings, {
      interactive,
      passphraseCache: this.passphraseCache,
      seenKeys: this.seenKeys,
    });
    if (this.disposed) {
      open.end();
      throw new SshError('config', `The connection to ${this.label} was closed.`, false);
    }
    const live: Live = { open, client: open.client, lost: false };
    let reason = 'the VM closed the connection';
    open.client.on('error', (err: Error) => {
      reason = err.message === 'Keepalive timeout' ? 'the VM stopped answering (keepalive timeout)' : err.message;
    });
    open.client.on('close', () => this.onLost(live, reason));
    this.live = live;
    this.logger.info(`Connected to ${this.label} in ${Date.now() - started} ms`);
    this.setState({ kind: 'connected' });
  }

  private onLost(live: Live, reason: string): void {
    live.lost = true;
    if (this.live !== live) return;
    this.live = undefined;
    live.open.end();
    if (this.disposed) return;
    this.logger.warn(`Lost the connection to ${this.label}: ${reason}`);
    void this.reconnectLoop(reason);
  }

  private stopReconnecting(): void {
    this.generation++;
    this.wake?.();
  }

  private async reconnectLoop(firstReason: string): Promise<void> {
    const generation = ++this.generation;
    let reason = firstReason;
    for (let n = 1; ; n++) {
      if (this.policy.maxAttempts > 0 && n > this.policy.maxAttempts) {
        const message = `Gave up reconnecting to ${this.label} after ${this.policy.maxAttempts} attempts (${reason}). Connect again when the VM is reachable.`;
        this.logger.error(message);
        this.setState({ kind: 'failed', reason: message, retryable: true });
        return;
      }
      const delay = reconnectDelayMs(n, this.policy);
      this.setState({ kind: 'reconnecting', attempt: n, nextRetryMs: delay, reason });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
      if (generation !== this.generation || this.disposed) return;
      const attempt = this.attempt(false, n);
      this.inFlight = attempt;
      try {
        await attempt;
        return;
      } catch (e) {
        const err = toSshError(e);
        if (generation !== this.generation || this.disposed) return;
        if (!err.retryable) {
          // Credentials or host key: a person must act; retrying would only repeat the refusal.
          this.logger.error(`Stopped reconnecting to ${this.label}: ${err.message}`);
          this.setState({ kind: 'failed', reason: err.message, retryable: false });
          return;
        }
        this.logger.warn(`Reconnection attempt ${n} to ${this.label} failed: ${err.message}`);
        reason = err.message;
      } finally {
        if (this.inFlight === attempt) this.inFlight = undefined;
      }
    }
  }

  private requireLive(): Live {
    if (this.live) return this.live;
    const what =
      this.current.kind === 'reconnecting' || this.current.kind === 'connecting'
        ? 'the connection is being restored'
        : this.current.kind === 'failed'
          ? `the connection failed (${this.current.reason})`
          : 'no connection has been opened yet';
    throw new SshError('network', `Not connected to ${this.label}: ${what}. Try again once it is connected.`, true);
  }

  private lostError(what: string): SshError {
    return new SshError(
      'network',
      `The connection to ${this.label} dropped during ${what}; whether it completed is unknown. It will be retried once connected.`,
      true,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Target operations

  /**
   * The login's home folder: where SFTP starts (its realpath of "."), which costs no process on the VM beyond
   * the SFTP session that reading and writing files opens anyway; a shell's $HOME where SFTP answers otherwise.
   */
  async home(): Promise<string> {
    const live = this.requireLive();
    live.home ??= this.sftpHome(live).then(async (fromSftp) => {
      if (fromSftp !== undefined) return fromSftp;
      const r = await this.exec('printf "%s" "$HOME"');
      const home = r.stdout.trim();
      if (r.code !== 0 || !home.startsWith('/')) throw new SshError('config', `Could not read the home folder of ${this.label} (got "${home}").`, false);
      return home;
    });
    live.home.catch(() => {
      if (this.live === live) live.home = undefined;
    });
    return live.home;
  }

  /**
   * Runs a command over the shared connection. If the link drops before the command reports its
   * exit, this rejects with a retryable SshError('network') instead of resolving: the command may
   * or may not have finished on the VM, and callers must find out (e.g. from the runner's files)
   * rather than treat it as a failure.
   */
  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      if (options.signal?.aborted) return reject(abortError());
      let live: Live;
      try {
        live = this.requireLive();
      } catch (e) {
        return reject(e);
      }
      const onOpen = (err: Error | undefined, channel: ClientChannel) => {
        if (err) {
          return reject(
            live.lost
              ? this.lostError(`the start of "${short(command)}"`)
              : new SshError('network', `Could not start a command on ${this.label}: ${err.message}`, true),
          );
        }
        runChannel(channel, live, command, options, resolve, reject, () => this.lostError(`"${short(command)}"`));
      };
      try {
        live.client.exec(command, onOpen);
      } catch (e) {
        reject(live.lost ? this.lostError(`the start of "${short(command)}"`) : toSshError(e));
      }
    });
  }

  async readFile(filePath: string): Promise<Buffer> {
    const live = this.requireLive();
    const sftp = await this.sftp(live);
    return new Promise((resolve, reject) => {
      sftp.readFile(filePath, (err: Error | undefined, data: Buffer) => {
        if (err) reject(this.sftpError(err, live, 'read', filePath));
        else resolve(data);
      });
    });
  }

  async writeFile(filePath: string, data: Buffer | string, mode?: number): Promise<void> {
    const live = this.requireLive();
    const sftp = await this.sftp(live);
    const call = (what: string, fn: (cb: (err: Error | undefined | null) => void) => void) =>
      new Promise<void>((resolve, reject) => fn((err) => (err ? reject(this.sftpError(err, live, what, filePath)) : resolve())));
    await this.mkdirs(sftp, live, path.posix.dirname(filePath));
    await call('write', (cb) => sftp.writeFile(filePath, data, mode === undefined ? {} : { mode }, cb));
    // The mode given at open applies only to new files (and the umask trims it); set it explicitly.
    if (mode !== undefined) await call('chmod', (cb) => sftp.chmod(filePath, mode, cb));
  }

  /** SFTP's starting folder (the home folder, unless the server confines SFTP elsewhere), or undefined. */
  private async sftpHome(live: Live): Promise<string | undefined> {
    let sftp: SFTPWrapper;
    try {
      sftp = await this.sftp(live);
    } catch {
      return undefined;
    }
    return new Promise((resolve) => {
      sftp.realpath('.', (err, absolute) => resolve(!err && absolute.startsWith('/') && absolute !== '/' ? absolute : undefined));
    });
  }

  private sftp(live: Live): Promise<SFTPWrapper> {
    if (!live.sftp) {
      const opening = new Promise<SFTPWrapper>((resolve, reject) => {
        try {
          live.client.sftp((err, sftp) => {
            if (err)
              return reject(
                live.lost
                  ? this.lostError('opening SFTP')
                  : new SshError('config', `${this.label} refused SFTP (${err.message}). Ask your organiser to enable the sftp subsystem.`, false),
              );
            sftp.on('close', () => {
              if (live.sftp === opening) live.sftp = undefined;
            });
            resolve(sftp);
          });
        } catch (e) {
          reject(live.lost ? this.lostError('opening SFTP') : toSshError(e));
        }
      });
      live.sftp = opening;
      opening.catch(() => {
        if (live.sftp === opening) live.sftp = undefined;
      });
    }
    return live.sftp;
  }

  private async mkdirs(sftp: SFTPWrapper, live: Live, dir: string): Promise<void> {
    if (dir === '/' || dir === '.' || dir === '') return;
    const isDir = await new Promise<boolean | undefined>((resolve, reject) =>
      sftp.stat(dir, (err, stats) => {
        if (!err) return resolve(stats.isDirectory());
        if ((err as Error & { code?: unknown }).code === 2) return resolve(undefined);
        reject(this.sftpError(err, live, 'inspect', dir));
      }),
    );
    if (isDir === true) return;
    if (isDir === false) throw Object.assign(new Error(`Cannot create ${dir} on ${this.label}: a file with that name exists.`), { code: 'ENOTDIR' });
    await this.mkdirs(sftp, live, path.posix.dirname(dir));
    await new Promise<void>((resolve, reject) =>
      sftp.mkdir(dir, (err) => {
        if (!err) return resolve();
        // Created meanwhile by someone else: fine.
        sftp.stat(dir, (e2, st) => (!e2 && st.isDirectory() ? resolve() : reject(this.sftpError(err, live, 'create folder', dir))));
      }),
    );
  }

  /** SFTP failures as Node-style errors (code ENOENT/EACCES) so both targets read alike. */
  private sftpError(err: Error, live: Live, what: string, filePath: string): Error {
    if (live.lost) return this.lostError(`${what} ${filePath}`);
    const status = (err as Error & { code?: unknown }).code;
    const code = status === 2 ? 'ENOENT' : status === 3 ? 'EACCES' : 'EIO';
    const text = code === 'ENOENT' ? 'no such file or folder' : code === 'EACCES' ? 'permission denied' : err.message;
    return Object.assign(new Error(`Cannot ${what} ${filePath} on ${this.label}: ${text}`), { code });
  }
}

function runChannel(
  channel: ClientChannel,
  live: Live,
  command: string,
  options: ExecOptions,
  resolve: (r: ExecResult) => void,
  reject: (e: unknown) => void,
  lostError: () => SshError,
): void {
  const output = new OutputCollector(options);
  let exit: { code: number | null; signal: string | null } | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  channel.on('data', (chunk: Buffer) => output.onStdout(chunk));
  channel.stderr.on('data', (chunk: Buffer) => output.onStderr(chunk));
  channel.on('exit', (code: number | null, signal?: string) => {
    exit = { code: typeof code === 'number' ? code : null, signal: signal ?? null };
  });

  const onAbort = () => {
    sendSignal(channel, 'TERM');
    killTimer = setTimeout(() => {
      sendSignal(channel, 'KILL');
      channel.close();
    }, ABORT_KILL_AFTER_MS);
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  channel.on('close', () => {
    options.signal?.removeEventListener('abort', onAbort);
    if (killTimer) clearTimeout(killTimer);
    if (!exit && live.lost) return reject(lostError());
    resolve({ code: exit?.code ?? null, signal: exit?.signal ?? null, ...output.end() });
  });

  if (options.stdinWriter) {
    let ended = false;
    channel.on('close', () => (ended = true));
    options.stdinWriter({
      write: (text) => {
        if (!ended) channel.write(text);
      },
      end: () => {
        if (!ended) channel.end();
        ended = true;
      },
    });
  } else if (options.stdin !== undefined) channel.end(options.stdin);
  else channel.end();
}

/**
 * ssh2's Channel.signal() does nothing once stdin is closed (mscdex/ssh2#1510), and stdin is always
 * closed here, so the request goes straight to the protocol layer when the channel is half-closed.
 * OpenSSH's sshd honours it (measured: a TERM ends `sleep` within one round trip).
 */
function sendSignal(channel: ClientChannel, name: string): void {
  const internal = channel as unknown as {
    outgoing?: { state?: string; id?: number };
    _client?: { _protocol?: { signal?: (id: number, signal: string) => void } };
  };
  const proto = internal._client?._protocol;
  const id = internal.outgoing?.id;
  if (internal.outgoing?.state === 'eof' && typeof id === 'number' && typeof proto?.signal === 'function') {
    proto.signal(id, name);
  } else {
    channel.signal(name);
  }
}

function abortError(): Error {
  return Object.assign(new Error('The command was cancelled before it started.'), { name: 'AbortError', code: 'ABORT_ERR' });
}

function toSshError(e: unknown): SshError {
  if (e instanceof SshError) return e;
  return new SshError('network', e instanceof Error ? e.message : String(e));
}

function short(command: string): string {
  const one = command.replace(/\s+/g, ' ').trim();
  return one.length > 60 ? `${one.slice(0, 57)}...` : one;
}
