/**
 * The file system proper-lockfile is given for the spool lock. At exit it removes (rmdirSync) every
 * lock it still counts as held, without looking whose the directory now is: a process that learnt
 * it lost the spool by its epoch (not by its lock) would remove the next owner's lock on its way
 * out, and that owner would then find its lock gone and stop too. Here the removal happens only
 * while the lock's mtime is the one this process last wrote and the owner says the spool is still
 * its own.
 */
import * as fs from 'node:fs';

type Callback = (err: NodeJS.ErrnoException | null) => void;

export function lockFileSystem(stillOwner: () => boolean): typeof fs {
  // The mtime this process last gave the lock (proper-lockfile's own check, "is the mtime ours").
  let written: number | null = null;
  return {
    ...fs,
    utimes(path: fs.PathLike, atime: fs.TimeLike, mtime: fs.TimeLike, callback: Callback): void {
      fs.utimes(path, atime, mtime, (err) => {
        if (err) return callback(err);
        // As the file system stores it (some keep whole seconds only).
        fs.stat(path, (statErr, stat) => {
          if (!statErr) written = stat.mtime.getTime();
          callback(null);
        });
      });
    },
    rmdirSync(path: fs.PathLike): void {
      if (written === null || !stillOwner()) return;
      let now: number;
      try {
        now = fs.statSync(path).mtime.getTime();
      } catch {
        return;
      }
      if (now === written) fs.rmdirSync(path);
    },
  } as typeof fs;
}
