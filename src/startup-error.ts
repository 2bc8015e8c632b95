/**
 * The service cannot start for a reason the operator fixes in the environment (a port in use, a
 * directory it may not create): one line naming the configuration key, exit code 1.
 */
export class StartupError extends Error {
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`${key}: ${detail}`);
    this.name = 'StartupError';
  }
}

/** `err`'s code and message without a stack, for that one line. */
export function describeSystemError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message}` : String(e.message ?? err);
}
