import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describeSystemError, StartupError } from '../startup-error.js';

/** The shortest token accepted, as for `auth.bearerToken`. */
export const MIN_TOKEN_LENGTH = 16;

export type TokenFileParse = { ok: true; tokens: string[] } | { ok: false; reason: string };

/**
 * A token file: one token per line; blank lines and lines starting with `#` are left out. The
 * reason of a refusal names the line, never its text.
 */
export function parseTokenFile(text: string): TokenFileParse {
  const tokens: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.length < MIN_TOKEN_LENGTH) return { ok: false, reason: `line ${i + 1} is shorter than ${MIN_TOKEN_LENGTH} characters` };
    if (/\s/.test(line)) return { ok: false, reason: `line ${i + 1} holds white space inside the token` };
    tokens.push(line);
  }
  if (tokens.length === 0) return { ok: false, reason: 'it holds no token' };
  return { ok: true, tokens: [...new Set(tokens)] };
}

export interface TokenFileEvents {
  /** The file was read anew and its tokens differ from the last ones taken. */
  changed(count: number): void;
  /** The file could not be read or holds no valid token: the tokens taken before stay in force. */
  refused(reason: string): void;
}

/**
 * The tokens of `auth.tokenFile`, read at start and then checked every `checkMs`. A Kubernetes
 * Secret volume replaces its files by swapping a symlink (`..data`), which a watch on the file
 * misses; reading the path again follows the new link, so the file is polled. A file that cannot
 * be read or holds no valid token keeps the tokens taken before: a half-written file must not shut
 * every sender out.
 */
export class TokenFile {
  private text: string;
  private current: string[];
  private readonly timer: NodeJS.Timeout;
  private reading = false;
  /** The last refusal reported, so that a file that stays wrong is reported once, not every check. */
  private refusal: string | null = null;

  /** Reads the file now; throws a StartupError naming `auth.tokenFile` when it is unusable. */
  constructor(
    private readonly path: string,
    checkMs: number,
    private readonly events: TokenFileEvents,
  ) {
    try {
      this.text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new StartupError('auth.tokenFile', `cannot read ${path} (${describeSystemError(err)})`);
    }
    const parsed = parseTokenFile(this.text);
    if (!parsed.ok) throw new StartupError('auth.tokenFile', `${path}: ${parsed.reason}`);
    this.current = parsed.tokens;
    this.timer = setInterval(() => void this.check(), checkMs);
    this.timer.unref();
  }

  tokens(): readonly string[] {
    return this.current;
  }

  /** Read the file again; resolves once the tokens in force are what it holds (or were kept). */
  async check(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      let text: string;
      try {
        text = await readFile(this.path, 'utf8');
      } catch (err) {
        this.refuse(`cannot read ${this.path} (${describeSystemError(err)})`);
        return;
      }
      if (text === this.text) {
        this.refusal = null;
        return;
      }
      const parsed = parseTokenFile(text);
      if (!parsed.ok) {
        this.refuse(`${this.path}: ${parsed.reason}`);
        return;
      }
      this.refusal = null;
      this.text = text;
      this.current = parsed.tokens;
      this.events.changed(parsed.tokens.length);
    } finally {
      this.reading = false;
    }
  }

  private refuse(reason: string): void {
    if (reason === this.refusal) return;
    this.refusal = reason;
    this.events.refused(reason);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
