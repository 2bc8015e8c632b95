import { createHash, timingSafeEqual } from 'node:crypto';

export interface AuthSettings {
  bearerToken?: string | undefined;
  basicUser?: string | undefined;
  basicPassword?: string | undefined;
}

// Comparing digests keeps the comparison constant-time whatever the lengths of the two values.
const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Checks the Authorization header against the configured bearer token and/or basic credentials
 * (either passes when both are set). Returns null when the request may go on, else the reason.
 * A reason names what is wrong with the header, never any part of its value: a header without
 * its scheme word is the credential itself.
 */
export function makeAuthCheck(settings: AuthSettings): ((header: string | undefined) => string | null) | null {
  const bearer = settings.bearerToken ? digest(settings.bearerToken) : null;
  const basic =
    settings.basicUser !== undefined && settings.basicPassword !== undefined
      ? digest(`${settings.basicUser}:${settings.basicPassword}`)
      : null;
  if (!bearer && !basic) return null;
  return (header) => {
    if (!header) return 'missing Authorization header';
    const m = /^([A-Za-z]+)[ \t]+(\S.*)$/s.exec(header.trim());
    if (!m) return 'the Authorization header is not "<scheme> <credentials>"';
    const scheme = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    if (scheme === 'bearer' && bearer) return timingSafeEqual(digest(value), bearer) ? null : 'bearer token does not match';
    if (scheme === 'basic' && basic) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      return timingSafeEqual(digest(decoded), basic) ? null : 'basic credentials do not match';
    }
    const accepted = [bearer ? 'Bearer' : null, basic ? 'Basic' : null].filter(Boolean).join(' or ');
    return `the Authorization scheme is not one accepted here (${accepted})`;
  };
}
