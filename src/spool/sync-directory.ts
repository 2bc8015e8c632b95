import { open } from 'node:fs/promises';

/** Make the entries of a directory (a file created or renamed in it) durable. */
export async function syncDirectory(path: string): Promise<void> {
  const d = await open(path, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
