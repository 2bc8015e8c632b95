import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import split2 from 'split2';
import type { Pipeline } from './pipeline.js';
import type { LogRecord } from './receive/index.js';

export interface ReplaySummary {
  lines: number;
  flows: number;
  events: number;
  skipped: number;
  deadLettered: number;
}

/**
 * A saved log line as the record Fluent Bit would have sent for it: CRI container log lines
 * (`<time> stdout F <line>`, as under /var/log/containers) keep their time and partial tag, docker
 * json-file lines are taken as the record they are, anything else (kubectl logs) is the line.
 */
export function lineToRecord(line: string): LogRecord {
  if (line.startsWith('{"log":')) {
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (typeof rec.log === 'string') {
        rec.log = rec.log.endsWith('\n') ? rec.log.slice(0, -1) : rec.log;
        return { record: rec, timeSec: null };
      }
    } catch {
      // not a docker log line after all: fall through and treat it as a plain line
    }
  }
  const s1 = line.indexOf(' ');
  if (s1 > 0 && line.charCodeAt(s1 - 1) === 0x5a /* Z */) {
    const stream = line.slice(s1 + 1, s1 + 7);
    const tag = line.charCodeAt(s1 + 8);
    if ((stream === 'stdout' || stream === 'stderr') && line.charCodeAt(s1 + 7) === 0x20 && (tag === 0x50 || tag === 0x46) && line.charCodeAt(s1 + 9) === 0x20) {
      return {
        record: { time: line.slice(0, s1), stream, logtag: tag === 0x50 ? 'P' : 'F', log: line.slice(s1 + 10) },
        timeSec: null,
      };
    }
  }
  return { record: { log: line }, timeSec: null };
}

/** Feed a saved cilium-agent log through the pipeline, waiting whenever it pushes back. */
export async function replay(input: Readable | string, pipeline: Pipeline, chunkLines = 1000): Promise<ReplaySummary> {
  const stream = typeof input === 'string' ? createReadStream(input) : input;
  const total: ReplaySummary = { lines: 0, flows: 0, events: 0, skipped: 0, deadLettered: 0 };
  let chunk: LogRecord[] = [];
  const send = async () => {
    // Rows made here are not parked (there is no request to spool): wait while memory is at its bounds.
    for (let why = pipeline.refuseReason(); why !== null || pipeline.overMemoryBounds(1); why = pipeline.refuseReason()) {
      if (why === 'draining') throw new Error('the pipeline is shutting down');
      await new Promise((r) => setTimeout(r, 20));
    }
    // The records as the JSON lines request they stand for: what a spool would keep of them.
    let text = '';
    for (const r of chunk) text += JSON.stringify(r.record) + '\n';
    const s = await pipeline.ingest({ format: 'json_lines', encoding: '', body: Buffer.from(text), decoded: { records: chunk, bad: [] } });
    total.flows += s.flows;
    total.events += s.events;
    total.skipped += s.skipped;
    total.deadLettered += s.deadLettered;
    chunk = [];
  };
  const lines = stream.pipe(split2());
  // pipe() does not carry a read error (a directory, an unreadable file) on to the lines.
  stream.on('error', (err: Error) => lines.destroy(err));
  for await (const line of lines as AsyncIterable<string>) {
    total.lines++;
    chunk.push(lineToRecord(line));
    if (chunk.length >= chunkLines) await send();
  }
  if (chunk.length > 0) await send();
  return total;
}
