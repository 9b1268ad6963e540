import { SessionError } from '../errors';

export type SshErrorCode =
  | 'host-key-mismatch'
  | 'host-key-unknown-rejected'
  | 'auth-failed'
  | 'timeout'
  | 'network'
  | 'config';

/**
 * A failure of the SSH link. `retryable` is true when trying again later may work by itself
 * (network, timeout); false when a person must act first (host key, credentials, settings).
 */
export class SshError extends SessionError {
  declare readonly code: SshErrorCode;

  constructor(code: SshErrorCode, message: string, retryable = code === 'network' || code === 'timeout') {
    super(message, code, retryable);
    this.name = 'SshError';
  }
}

/** Logs what a connection does; messages never contain passphrases, passwords or key material. */
export interface SshLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: SshLogger = { info() {}, warn() {}, error() {} };
