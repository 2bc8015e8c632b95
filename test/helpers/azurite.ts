/**
 * Azurite (the Azure Storage emulator, npm package) on loopback, in memory, as the storage of
 * queued ingestion: a temp-storage container and a ready-for-aggregation queue, with SAS URLs
 * like those ADX hands out in `.get ingestion resources`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { ContainerSASPermissions, StorageSharedKeyCredential, BlobServiceClient } from '@azure/storage-blob';
import { QueueSASPermissions, QueueServiceClient, StorageSharedKeyCredential as QueueKey } from '@azure/storage-queue';

const require = createRequire(import.meta.url);
const ACCOUNT = 'devstoreaccount1';
// Azurite's documented, public development key.
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  blobContainerSas: string;
  queueSas: string;
  stop(): Promise<void>;
}

async function waitForPort(url: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`Azurite did not answer at ${url}`);
}

export async function startAzurite(): Promise<Azurite> {
  const bin = require.resolve('azurite/dist/src/azurite.js');
  const blobPort = 21000 + Math.floor(Math.random() * 20000);
  const queuePort = blobPort + 1;
  const child: ChildProcess = spawn(
    process.execPath,
    [bin, '--silent', '--inMemoryPersistence', '--skipApiVersionCheck', '--disableTelemetry', '--blobHost', '127.0.0.1', '--queueHost', '127.0.0.1', '--tableHost', '127.0.0.1',
      '--blobPort', String(blobPort), '--queuePort', String(queuePort), '--tablePort', String(queuePort + 1)],
    { stdio: 'ignore' },
  );
  const blobUrl = `http://127.0.0.1:${blobPort}/${ACCOUNT}`;
  const queueUrl = `http://127.0.0.1:${queuePort}/${ACCOUNT}`;
  const deadline = Date.now() + 20_000;
  await waitForPort(blobUrl, deadline);
  await waitForPort(queueUrl, deadline);

  const expiresOn = new Date(Date.now() + 3600_000);
  const container = new BlobServiceClient(blobUrl, new StorageSharedKeyCredential(ACCOUNT, KEY)).getContainerClient('tempstorage');
  await container.createIfNotExists();
  const blobContainerSas = await container.generateSasUrl({ permissions: ContainerSASPermissions.parse('racwdl'), expiresOn });
  const queue = new QueueServiceClient(queueUrl, new QueueKey(ACCOUNT, KEY)).getQueueClient('readyforaggregation');
  await queue.createIfNotExists();
  const queueSas = queue.generateSasUrl({ permissions: QueueSASPermissions.parse('raup'), expiresOn });

  return {
    blobContainerSas,
    queueSas,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
