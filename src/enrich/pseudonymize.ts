import { createHmac } from 'node:crypto';

/**
 * Keyed pseudonyms (HMAC-SHA256, key from a Secret): the same input always gives the same token,
 * so rows stay joinable, but the raw value cannot be recovered without the key.
 */
export class Pseudonymizer {
  constructor(private readonly key: string) {}

  token(value: string): string {
    return `h:${createHmac('sha256', this.key).update(value).digest('hex').slice(0, 32)}`;
  }

  /** An HTTP URL with its query string replaced by one pseudonym. */
  url(url: string): string {
    const q = url.indexOf('?');
    if (q < 0) return url;
    const hash = url.indexOf('#', q);
    const query = hash < 0 ? url.slice(q + 1) : url.slice(q + 1, hash);
    return `${url.slice(0, q)}?${this.token(query)}${hash < 0 ? '' : url.slice(hash)}`;
  }
}
