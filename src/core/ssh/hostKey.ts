// Host-key fingerprints in the form `ssh-keygen -lf` prints, and pinned-fingerprint parsing.

import { createHash } from 'node:crypto';

/** "SHA256:" + unpadded base64 of the SHA-256 of the key blob (the wire-format public key). */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public-key blob ("ssh-ed25519", "ecdsa-sha2-nistp256", ...). */
export function keyTypeOfBlob(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const len = keyBlob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > keyBlob.length) return undefined;
  const type = keyBlob.subarray(4, 4 + len).toString('latin1');
  return /^[a-z0-9@._-]+$/i.test(type) ? type : undefined;
}

export type PinParseResult = { ok: true; fingerprint: string } | { ok: false; error: string };

/**
 * Reads a pinned fingerprint leniently: surrounding space, a missing `=` padding, any case of the
 * "SHA256:" prefix, or a whole `ssh-keygen -lf` line ("256 SHA256:... comment (ED25519)") are fine.
 * Returns the canonical "SHA256:<43 base64 chars>" form.
 */
export function parsePinnedFingerprint(text: string): PinParseResult {
  const raw = String(text ?? '').trim();
  if (raw === '') return { ok: false, error: 'The pinned host-key fingerprint is empty. Ask your organiser for the "SHA256:..." fingerprint of the VM.' };
  const token = raw.split(/\s+/).find((t) => /^(sha256|md5):/i.test(t)) ?? raw;
  if (/^md5:/i.test(token) || /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(token)) {
    return {
      ok: false,
      error: `"${short(raw)}" is an MD5 fingerprint; a SHA256 one is needed. Ask for the output of "ssh-keygen -lf -E sha256 <host key>.pub" (it starts with "SHA256:").`,
    };
  }
  if (!/^sha256:/i.test(token)) {
    return { ok: false, error: `"${short(raw)}" is not a host-key fingerprint: it must start with "SHA256:", as "ssh-keygen -lf" prints it.` };
  }
  const body = token.slice(7).replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]{43}$/.test(body)) {
    return {
      ok: false,
      error: `"${short(raw)}" is not a complete SHA256 fingerprint: after "SHA256:" come 43 base64 characters (A-Z, a-z, 0-9, + and /). Check that it was copied whole.`,
    };
  }
  return { ok: true, fingerprint: `SHA256:${body}` };
}

function short(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
