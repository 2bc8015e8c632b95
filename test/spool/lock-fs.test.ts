/**
 * At exit, proper-lockfile removes every lock it still counts as held. A process that learnt by its
 * epoch that it lost the spool, and exits, must not remove the lock the next owner holds now.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockFileSystem } from '../../src/spool/lock-fs.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function lockDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'hubble-adx-lockfs-'));
  dirs.push(d);
  const lock = join(d, 'spool.lock');
  mkdirSync(lock);
  return lock;
}

const touch = (fs: ReturnType<typeof lockFileSystem>, path: string, at: Date) =>
  new Promise<void>((resolve, reject) => fs.utimes(path, at, at, (err) => (err ? reject(err) : resolve())));

describe('the spool lock at exit', () => {
  it('is removed while its mtime is the one this process last wrote and the spool is still its own', async () => {
    const lock = lockDir();
    const fs = lockFileSystem(() => true);
    await touch(fs, lock, new Date(Date.now() + 1000));
    fs.rmdirSync(lock);
    expect(existsSync(lock)).toBe(false);
  });

  it('is left to the process that took it over (its mtime is not this one\'s)', async () => {
    const lock = lockDir();
    const fs = lockFileSystem(() => true);
    await touch(fs, lock, new Date(Date.now() - 10_000));
    // The next owner found it stale, removed it and made its own.
    rmSync(lock, { recursive: true });
    mkdirSync(lock);
    const theirs = new Date(Date.now() + 2000);
    utimesSync(lock, theirs, theirs);
    fs.rmdirSync(lock);
    expect(statSync(lock).mtime.getTime()).toBe(theirs.getTime());
  });

  it('is left when the owner says the spool is no longer its own (a later epoch), even with its own mtime', async () => {
    const lock = lockDir();
    const fs = lockFileSystem(() => false);
    await touch(fs, lock, new Date(Date.now() + 1000));
    fs.rmdirSync(lock);
    expect(existsSync(lock)).toBe(true);
  });

  it('is left when this process never wrote its mtime', () => {
    const lock = lockDir();
    lockFileSystem(() => true).rmdirSync(lock);
    expect(existsSync(lock)).toBe(true);
  });
});
