/** hubble-adx as its own process (the built CLI), for crash, signal and memory tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './project-root.js';
import { metricValue } from './metric-value.js';

// The built CLI, from test/support/ (vitest) and from dist/test/support/ (benchmarks) alike.
const CLI = join(projectRoot(), 'dist', 'src', 'cli.js');

export interface Child {
  port: number;
  proc: ChildProcess;
  exited: Promise<number | null>;
  logs: () => string;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Peak resident set size of the process so far, in MiB (VmHWM). */
  peakRssMiB(): number;
}

/**
 * `args`: the CLI's arguments (`serve` by default; the Dockerfile's CMD, see containerCommand, to run
 * it as the image does), run from the project root as the image runs from /app.
 */
export async function spawnService(env: Record<string, string>, port = 20000 + Math.floor(Math.random() * 20000), args: readonly string[] = ['serve']): Promise<Child> {
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: projectRoot(),
    env: { PATH: process.env.PATH, HUBBLE_ADX_SERVER__PORT: String(port), HUBBLE_ADX_LOG__LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const deadline = Date.now() + 15_000;
  while (!out.includes('hubble-adx ready')) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`hubble-adx did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    proc,
    exited,
    logs: () => out,
    async metric(name, labels = {}) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return metricValue(text, name, labels);
    },
    peakRssMiB() {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : Number.NaN;
    },
  };
}
