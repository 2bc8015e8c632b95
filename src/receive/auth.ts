import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export interface AuthSettings {
  bearerToken?: string | undefined;
  tokenFile?: string | undefined;
  tokenFileCheckMs?: number | undefined;
  basicUser?: string | undefined;
  basicPassword?: string | undefined;
  allowUnauthenticated?: boolean | undefined;
}

export interface Credentials {
  /** The bearer tokens accepted now (`auth.bearerToken` and those of `auth.tokenFile`). */
  bearerTokens(): readonly string[];
  /** `user:password` for basic auth, or null. */
  basic: string | null;
}

// Comparing digests keeps the comparison constant-time whatever the lengths of the two values.
const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Checks the Authorization header against the accepted bearer tokens and/or basic credentials
 * (either passes when both are set). Returns null when the request may go on, else the reason.
 * A reason names what is wrong with the header, never any part of its value: a header without
 * its scheme word is the credential itself. The set of tokens may change between two requests
 * (a rotation); every token is compared, so the time taken does not say which one matched.
 */
export function makeAuthCheck(credentials: Credentials): (header: string | undefined) => string | null {
  const basic = credentials.basic !== null ? digest(credentials.basic) : null;
  let tokens: readonly string[] = [];
  let digests: Buffer[] = [];
  const bearerDigests = () => {
    const now = credentials.bearerTokens();
    if (now !== tokens) {
      tokens = now;
      digests = now.map(digest);
    }
    return digests;
  };
  return (header) => {
    const bearer = bearerDigests();
    if (!header) return 'missing Authorization header';
    const m = /^([A-Za-z]+)[ \t]+(\S.*)$/s.exec(header.trim());
    if (!m) return 'the Authorization header is not "<scheme> <credentials>"';
    const scheme = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    if (scheme === 'bearer' && bearer.length > 0) {
      const given = digest(value);
      let match = false;
      for (const d of bearer) match = timingSafeEqual(given, d) || match;
      return match ? null : 'bearer token does not match';
    }
    if (scheme === 'basic' && basic) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      return timingSafeEqual(digest(decoded), basic) ? null : 'basic credentials do not match';
    }
    const accepted = [bearer.length > 0 ? 'Bearer' : null, basic ? 'Basic' : null].filter(Boolean).join(' or ');
    return `the Authorization scheme is not one accepted here (${accepted})`;
  };
}

/** Whether any credential is configured: a bearer token, a token file or basic credentials. */
export function hasCredentials(settings: AuthSettings): boolean {
  return Boolean(settings.bearerToken || settings.tokenFile || (settings.basicUser !== undefined && settings.basicPassword !== undefined));
}

/** Loopback names and addresses: only processes of the same host (or pod) reach them. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/**
 * Why the service must not start unauthenticated on `host`, or null: any pod of the node could
 * write rows into the audit tables of a receiver listening beyond loopback without credentials.
 */
export function unauthenticatedExposure(host: string, settings: AuthSettings): string | null {
  if (hasCredentials(settings) || settings.allowUnauthenticated || isLoopbackHost(host)) return null;
  return `server.host ${host} is not a loopback address and no credential is set (auth.tokenFile, auth.bearerToken or auth.basicUser/basicPassword); set one, or auth.allowUnauthenticated: true to accept any sender`;
}

/**
 * The credentials of `settings`, with the tokens of `auth.tokenFile` as `fileTokens` returns them
 * at each request; null when none is configured (every request is taken).
 */
export function credentialsOf(settings: AuthSettings, fileTokens: (() => readonly string[]) | null): Credentials | null {
  const basic = settings.basicUser !== undefined && settings.basicPassword !== undefined ? `${settings.basicUser}:${settings.basicPassword}` : null;
  const fixed = settings.bearerToken ? [settings.bearerToken] : [];
  if (!fileTokens && fixed.length === 0 && basic === null) return null;
  let fromFile: readonly string[] = [];
  let all: readonly string[] = fixed;
  return {
    basic,
    bearerTokens() {
      const now = fileTokens?.() ?? fromFile;
      if (now !== fromFile) {
        fromFile = now;
        all = [...new Set([...fixed, ...now])];
      }
      return all;
    },
  };
}
