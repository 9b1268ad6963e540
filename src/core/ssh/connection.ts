// Opens one SSH connection, through zero or more jump hosts, with host-key checks before
// authentication at every hop. Reconnection policy lives in sshTarget.ts, not here.

import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { Client, type ConnectConfig } from 'ssh2';
import { type AuthCallbacks, createAuthPlan } from './auth';
import { hostKeyAlgorithmsFor, readKnownHostsEntries, type UnknownHostInfo, verifyHostKey } from './hostTrust';
import { entryMatchesHost } from './knownHosts';
import { SshError, type SshLogger } from './sshError';

export interface SshHop {
  /** What the participant calls this host (an alias or the address). */
  host: string;
  /** The address to reach; defaults to `host`. */
  hostName?: string;
  port?: number;
  user: string;
  identityFiles?: readonly string[];
  /** Where identityFiles came from, for the message when none of them exists. */
  keySource?: string;
  /** Canonical "SHA256:..."; when given it alone decides whether the host key is right. */
  pinnedFingerprint?: string;
}

export interface ConnectionSettings extends AuthCallbacks {
  agent?: string;
  knownHostsFiles: readonly string[];
  acceptedHostsFile?: string;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  readyTimeoutMs: number;
  confirmUnknownHost?: (info: UnknownHostInfo) => Promise<boolean>;
  logger: SshLogger;
}

export interface AttemptContext {
  interactive: boolean;
  passphraseCache: Map<string, string>;
  /** Host keys verified earlier in this target's life, by "host:port". */
  seenKeys: Map<string, Buffer>;
}

export interface OpenConnection {
  /** The client for the last hop (the VM). */
  client: Client;
  /** Ends every hop. */
  end(): void;
}

export function hopLabel(hop: SshHop): string {
  return `${hop.user}@${hop.host}:${hop.port ?? 22}`;
}

/** Connects hop by hop; the first hop over TCP, each later hop through the previous one's forwardOut. */
export async function openConnection(hops: readonly SshHop[], s: ConnectionSettings, ctx: AttemptContext): Promise<OpenConnection> {
  const clients: Client[] = [];
  const endAll = () => {
    for (const c of [...clients].reverse()) c.end();
  };
  try {
    let stream: Duplex | undefined;
    for (let i = 0; i < hops.length; i++) {
      const hop = hops[i] as SshHop;
      if (i > 0) stream = await forward(clients[i - 1] as Client, hops[i - 1] as SshHop, hop);
      clients.push(await connectHop(hop, stream, s, ctx));
    }
  } catch (e) {
    endAll();
    throw e;
  }
  const last = clients[clients.length - 1];
  if (!last) throw new SshError('config', 'No host to connect to.', false);
  return { client: last, end: endAll };
}

function forward(via: Client, viaHop: SshHop, to: SshHop): Promise<Duplex> {
  const address = to.hostName ?? to.host;
  const port = to.port ?? 22;
  return new Promise((resolve, reject) => {
    via.forwardOut('127.0.0.1', 0, address, port, (err, channel) => {
      if (!err) return resolve(channel);
      const refused = /prohibited|denied/i.test(err.message);
      reject(
        new SshError(
          refused ? 'config' : 'network',
          `The jump host ${hopLabel(viaHop)} could not open a connection to ${address}:${port} (${err.message}). ` +
            (refused ? 'It does not allow TCP forwarding for you; ask your organiser.' : 'Check that the VM is running, then retry.'),
          !refused,
        ),
      );
    });
  });
}

/** A timer for the handshake that stops while the participant is answering a prompt. */
class HandshakeTimer {
  private timer: NodeJS.Timeout | undefined;
  private remaining: number;
  private startedAt = 0;
  private waiting = 0;
  private done = false;

  constructor(
    ms: number,
    private readonly onExpire: () => void,
  ) {
    this.remaining = ms;
    this.run();
  }

  userWait(waiting: boolean): void {
    if (this.done) return;
    if (waiting) {
      if (this.waiting++ === 0 && this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.remaining -= Date.now() - this.startedAt;
      }
    } else if (this.waiting > 0 && --this.waiting === 0) {
      this.run();
    }
  }

  clear(): void {
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private run(): void {
    this.startedAt = Date.now();
    // Always asynchronous, so the owner is fully set up before it can expire.
    this.timer = setTimeout(
      () => {
        if (!this.done) this.onExpire();
      },
      Math.max(1, this.remaining),
    );
  }
}

async function connectHop(hop: SshHop, stream: Duplex | undefined, s: ConnectionSettings, ctx: AttemptContext): Promise<Client> {
  const label = hopLabel(hop);
  const address = hop.hostName ?? hop.host;
  const port = hop.port ?? 22;
  const keyId = `${address.toLowerCase()}:${port}`;

  // Ask for the host-key algorithms already on record so the server presents a known key.
  let algorithms: ConnectConfig['algorithms'];
  if (!hop.pinnedFingerprint) {
    const files = [...s.knownHostsFiles, ...(s.acceptedHostsFile ? [s.acceptedHostsFile] : [])];
    const entries = await readKnownHostsEntries(files, { info() {}, warn() {}, error() {} });
    const types = entries.filter((e) => !e.marker && entryMatchesHost(e, address, port)).map((e) => e.keyType);
    const serverHostKey = hostKeyAlgorithmsFor(types);
    if (serverHostKey) algorithms = { serverHostKey: serverHostKey as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] };
  }

  return new Promise<Client>((resolve, reject) => {
    const client = new Client();
    let settled = false;
    let failure: SshError | undefined;
    let sock: net.Socket | undefined;

    const fail = (err: SshError) => {
      if (settled) return;
      settled = true;
      timer.clear();
      client.destroy();
      sock?.destroy();
      reject(err);
    };
    const timer = new HandshakeTimer(s.readyTimeoutMs, () =>
      fail(
        new SshError(
          'timeout',
          `No answer from ${label} within ${Math.round(s.readyTimeoutMs / 1000)} s while opening the SSH connection. ` +
            'Check that the VM is running and that your network can reach it, then retry.',
        ),
      ),
    );
    const userWait = (waiting: boolean) => timer.userWait(waiting);

    const auth = createAuthPlan({
      user: hop.user,
      label,
      agent: s.agent,
      identityFiles: hop.identityFiles ?? [],
      keySource: hop.keySource,
      interactive: ctx.interactive,
      passphraseCache: ctx.passphraseCache,
      askPassphrase: s.askPassphrase,
      keyboardInteractive: s.keyboardInteractive,
      logger: s.logger,
      onUserWait: userWait,
      abort: () => fail(auth.failure()),
    });

    // ssh2 treats any return value other than undefined as a synchronous verdict, so this must not be
    // an async function: a returned Promise would be truthy and accept every key.
    const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
      verifyHostKey(
        {
          host: address,
          port,
          label,
          pinnedFingerprint: hop.pinnedFingerprint,
          knownHostsFiles: s.knownHostsFiles,
          acceptedHostsFile: s.acceptedHostsFile,
          previousKey: ctx.seenKeys.get(keyId),
          interactive: ctx.interactive,
          confirmUnknownHost: s.confirmUnknownHost,
          logger: s.logger,
          onUserWait: userWait,
        },
        key,
      ).then(
        (result) => {
          if (settled) return;
          if (result.ok) {
            ctx.seenKeys.set(keyId, Buffer.from(key));
            verify(true);
          } else {
            failure = result.error;
            verify(false);
          }
        },
        (e: unknown) => {
          failure = new SshError('config', `Checking the host key of ${label} failed: ${e instanceof Error ? e.message : String(e)}`, false);
          verify(false);
        },
      );
    };

    client.on('ready', () => {
      if (settled) return;
      settled = true;
      timer.clear();
      if (sock) acknowledgePromptly(client, sock);
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string; code?: unknown }) => {
      if (settled) return;
      if (err.level === 'agent') {
        // A stale SSH_AUTH_SOCK: ssh2 moves on to the next method by itself.
        s.logger.warn(`${label}: the SSH agent could not be used (${err.message}); trying the key files`);
        return;
      }
      if (failure) return fail(failure);
      if (err.level === 'client-authentication') return fail(auth.failure());
      fail(classify(err, label));
    });
    client.on('close', () => {
      if (!settled)
        fail(
          failure ??
            new SshError(
              'network',
              `${label} closed the connection while it was being set up. Retry in a moment; if it keeps happening, ask your organiser to check the VM's SSH server.`,
            ),
        );
    });

    if (!stream) {
      sock = net.connect({ host: address, port });
      // Without this every small request waits ~40 ms for a delayed ACK (Nagle).
      sock.setNoDelay(true);
    }
    try {
      client.connect({
        sock: stream ?? sock,
        username: hop.user,
        hostVerifier,
        authHandler: auth.handler,
        keepaliveInterval: s.keepaliveIntervalMs,
        keepaliveCountMax: s.keepaliveCountMax,
        readyTimeout: 0, // replaced by HandshakeTimer, which pauses while the participant answers prompts
        algorithms,
      });
    } catch (e) {
      fail(new SshError('config', `Cannot connect to ${label}: ${e instanceof Error ? e.message : String(e)}`, false));
    }
  });
}

/** How many of the server's first packets after login are answered at once, and for how long after it. */
const PROMPT_ACKS = 3;
const PROMPT_ACK_WINDOW_MS = 2000;

/**
 * Right after login, OpenSSH sends its host keys and then the answer to the first channel request as two small
 * packets, and its socket holds the second (Nagle) until this side acknowledges the first. With nothing to send,
 * this side's kernel delays that acknowledgement (40 ms on Linux, up to 200 ms elsewhere), so opening the first
 * command waited that long on every connection. A keepalive request sent as each of the first packets arrives
 * carries the acknowledgement at once. ssh2 has no public call for it: its keepalive's own (the server answers
 * each with a failure, which ssh2 ignores when no global request of ours is waiting, and this client sends none).
 */
function acknowledgePromptly(client: Client, sock: net.Socket): void {
  const proto = (client as unknown as { _protocol?: { ping?: () => void } })._protocol;
  if (typeof proto?.ping !== 'function') return;
  const until = Date.now() + PROMPT_ACK_WINDOW_MS;
  let left = PROMPT_ACKS;
  const onData = () => {
    const late = Date.now() > until;
    if (late || --left <= 0) sock.off('data', onData);
    if (!late && sock.writable) proto.ping!();
  };
  sock.on('data', onData);
}

function classify(err: Error & { level?: string; code?: unknown }, label: string): SshError {
  const code = typeof err.code === 'string' ? err.code : '';
  if (code === 'ECONNREFUSED') {
    return new SshError(
      'network',
      `${label} refused the connection: no SSH server is listening on that port. Check the host and port, or that the VM is running.`,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new SshError('network', `The host name in ${label} could not be resolved. Check it for typos and check your network.`);
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT') {
    return new SshError('network', `${label} cannot be reached from this machine (${code}). Check your network or VPN, then retry.`);
  }
  if (err.level === 'client-timeout') {
    return new SshError('timeout', `${label} stopped answering (${err.message}). Retry when the network is back.`);
  }
  if (err.level === 'handshake' && /no matching/i.test(err.message)) {
    return new SshError('config', `${label} and this client share no SSH algorithm (${err.message}). Ask your organiser to check the VM's SSH server.`, false);
  }
  return new SshError('network', `The connection to ${label} failed: ${err.message}. Retry in a moment.`);
}
