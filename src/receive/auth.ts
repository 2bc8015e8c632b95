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
    const space = header.indexOf(' ');
    const scheme = header.slice(0, space < 0 ? header.length : space).toLowerCase();
    const value = space < 0 ? '' : header.slice(space + 1).trim();
    if (scheme === 'bearer' && bearer) return timingSafeEqual(digest(value), bearer) ? null : 'bearer token does not match';
    if (scheme === 'basic' && basic) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      return timingSafeEqual(digest(decoded), basic) ? null : 'basic credentials do not match';
    }
    return `authorization scheme "${scheme}" is not accepted`;
  };
}
