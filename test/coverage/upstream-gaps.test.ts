import { describe, expect, it } from 'vitest';
import { linePosition, UpstreamGaps, upstreamGapsOptionsSchema, type LinePosition, type UpstreamGapsOptions } from '../../src/coverage/upstream-gaps.js';

const GRACE = 300_000;
const T0 = Date.UTC(2026, 0, 1);
const options = (o: Partial<UpstreamGapsOptions> = {}) => upstreamGapsOptionsSchema.parse({ graceMs: GRACE, ...o });

/**
 * A file as Fluent Bit's tail reads it in one process: each line's offset is where its first byte
 * lies from where reading began, and it takes its UTF-8 bytes and a newline.
 */
class ExportFile {
  readonly lines: string[] = [];
  constructor(
    readonly name: string,
    private readonly tag: string,
  ) {}

  write(n: number): this {
    for (let i = 0; i < n; i++) {
      const k = this.lines.length;
      // Varied lengths, as Hubble's lines are; some with non-ASCII labels.
      this.lines.push(JSON.stringify({ flow: { uuid: `${this.tag}-${k}`, labels: k % 3 === 0 ? ['k8s:team=équipe-😀'] : [], pad: 'x'.repeat((k * 37) % 200) } }));
    }
    return this;
  }

  offsetOf(line: number): number {
    let o = 0;
    for (let i = 0; i < line; i++) o += Buffer.byteLength(this.lines[i]!, 'utf8') + 1;
    return o;
  }

  /** Lines [from, to) as the records of one chunk carry them. */
  chunk(from: number, to: number): LinePosition[] {
    return this.lines.slice(from, to).map((line, i) => ({ file: this.name, offset: this.offsetOf(from + i), line }));
  }

  bytes(from: number, to: number): number {
    return this.offsetOf(to) - this.offsetOf(from);
  }
}

describe('upstream gaps: the byte ranges of each export file follow on from one another', () => {
  it('lines that follow on leave nothing missing; a line takes its UTF-8 bytes and its newline', () => {
    const f = new ExportFile('/var/run/cilium/hubble/events.log', 'a').write(30);
    const t = new UpstreamGaps(options());
    t.observe(f.chunk(0, 10), T0);
    t.observe(f.chunk(10, 25), T0 + 1000);
    t.observe(f.chunk(25, 30), T0 + 2000);
    const r = t.closeWindow(T0 + 10 * GRACE);
    expect(r).toMatchObject({ missingBytes: 0, missing: [], receivedBytes: f.bytes(0, 30), duplicateBytes: 0, pendingBytes: 0, sequencesStarted: 1, filesTracked: 1 });
    expect(f.bytes(0, 30)).toBeGreaterThan(f.lines.slice(0, 30).reduce((n, l) => n + l.length + 1, 0));
  });

  it('a chunk that never arrives is missing once the grace time has passed, named by file and range, and reported once', () => {
    const f = new ExportFile('/var/log/acns/hubble/events.log', 'a').write(30);
    const t = new UpstreamGaps(options());
    t.observe(f.chunk(0, 10), T0);
    t.observe(f.chunk(20, 30), T0 + 1000);
    expect(t.closeWindow(T0 + GRACE)).toMatchObject({ missingBytes: 0, pendingBytes: f.bytes(10, 20) });
    const r = t.closeWindow(T0 + 1000 + GRACE);
    expect(r.missingBytes).toBe(f.bytes(10, 20));
    expect(r.missing).toEqual([{ file: f.name, bytes: f.bytes(10, 20), ranges: [[f.offsetOf(10), f.offsetOf(20)]] }]);
    expect(r.pendingBytes).toBe(0);
    expect(t.closeWindow(T0 + 10 * GRACE).missingBytes).toBe(0);
  });

  it('chunks that arrive out of order (two http workers, retries) are not missing', () => {
    const f = new ExportFile('events.log', 'a').write(40);
    const t = new UpstreamGaps(options());
    t.observe(f.chunk(30, 40), T0);
    t.observe(f.chunk(10, 20), T0 + 1000);
    t.observe(f.chunk(0, 10), T0 + 2000);
    t.observe(f.chunk(20, 30), T0 + GRACE - 1);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ missingBytes: 0, receivedBytes: f.bytes(0, 40), pendingBytes: 0, duplicateBytes: 0 });
  });

  it('a refusal restarts the wait: Fluent Bit will send the refused chunk again', () => {
    const f = new ExportFile('events.log', 'a').write(30);
    const t = new UpstreamGaps(options());
    t.observe(f.chunk(0, 10), T0);
    t.observe(f.chunk(20, 30), T0);
    t.refused(T0 + GRACE - 1);
    expect(t.closeWindow(T0 + GRACE + 1).missingBytes).toBe(0);
    expect(t.closeWindow(T0 + 2 * GRACE - 1).missingBytes).toBe(f.bytes(10, 20));
  });

  it('a chunk sent twice (its answer lost) counts as a duplicate, neither as data nor as a gap', () => {
    const f = new ExportFile('events.log', 'a').write(30);
    const t = new UpstreamGaps(options());
    t.observe(f.chunk(0, 10), T0);
    t.observe(f.chunk(10, 20), T0);
    t.observe(f.chunk(10, 20), T0 + 5000);
    t.observe(f.chunk(20, 30), T0 + 6000);
    t.observe(f.chunk(0, 10), T0 + 7000);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ missingBytes: 0, receivedBytes: f.bytes(0, 30), duplicateBytes: f.bytes(0, 20), unplacedBytes: 0 });
  });

  it('bytes called missing that arrive after all are counted late', () => {
    const f = new ExportFile('events.log', 'a').write(30);
    const t = new UpstreamGaps(options());
    t.observe(f.chunk(0, 10), T0);
    t.observe(f.chunk(20, 30), T0);
    expect(t.closeWindow(T0 + GRACE).missingBytes).toBe(f.bytes(10, 20));
    t.observe(f.chunk(10, 20), T0 + 2 * GRACE);
    expect(t.closeWindow(T0 + 3 * GRACE)).toMatchObject({ missingBytes: 0, lateBytes: f.bytes(10, 20), receivedBytes: 0, duplicateBytes: 0 });
  });

  it('a line Fluent Bit skipped (longer than Buffer_Max_Size, Skip_Long_Lines On) is missing', () => {
    const f = new ExportFile('events.log', 'a').write(3);
    f.lines[1] = 'x'.repeat(3 * 1024 * 1024);
    const t = new UpstreamGaps(options());
    t.observe([...f.chunk(0, 1), ...f.chunk(2, 3)], T0);
    expect(t.closeWindow(T0 + GRACE)).toMatchObject({ missingBytes: 3 * 1024 * 1024 + 1, missing: [{ file: 'events.log', ranges: [[f.offsetOf(1), f.offsetOf(2)]] }] });
  });

  it('the first chunk of a file never arriving is missing: every read of a file begins at offset 0', () => {
    const f = new ExportFile('events-2026-01-01T00-00-00.000.log', 'a').write(20);
    const t = new UpstreamGaps(options());
    t.observe(f.chunk(10, 20), T0);
    expect(t.closeWindow(T0 + GRACE)).toMatchObject({ missingBytes: f.bytes(0, 10), missing: [{ ranges: [[0, f.offsetOf(10)]] }] });
  });
});

describe('upstream gaps: rotation and Fluent Bit restarts begin a new read of a file name at offset 0', () => {
  it('a new file under the name of the one the agent rotated starts again at 0; the old one’s last chunk may come after', () => {
    const old = new ExportFile('events.log', 'old').write(40);
    const next = new ExportFile('events.log', 'new').write(20);
    const t = new UpstreamGaps(options());
    t.observe(old.chunk(0, 30), T0);
    // The rotated file's tail, still reported under its first name, retried after the new file's head.
    t.observe(next.chunk(0, 10), T0 + 1000);
    t.observe(old.chunk(30, 40), T0 + 2000);
    t.observe(next.chunk(10, 20), T0 + 3000);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ missingBytes: 0, receivedBytes: old.bytes(0, 40) + next.bytes(0, 20), duplicateBytes: 0, sequencesStarted: 2 });
  });

  it('the rotated file’s tail and the new file’s head in one request', () => {
    const old = new ExportFile('events.log', 'old').write(20);
    const next = new ExportFile('events.log', 'new').write(20);
    const t = new UpstreamGaps(options());
    t.observe(old.chunk(0, 15), T0);
    t.observe([...old.chunk(15, 20), ...next.chunk(0, 5)], T0 + 1000);
    t.observe(next.chunk(5, 20), T0 + 2000);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ missingBytes: 0, receivedBytes: old.bytes(0, 20) + next.bytes(0, 20) });
  });

  it('a Fluent Bit restart resumes from its DB with offsets from 0 again, while chunks buffered before the restart still arrive', () => {
    // One file on disk: lines 0-29 read by the first process, 30-49 by the second (from the DB offset).
    const disk = new ExportFile('events.log', 'a').write(50);
    const second = new ExportFile('events.log', 'x');
    second.lines.push(...disk.lines.slice(30));
    const t = new UpstreamGaps(options());
    t.observe(disk.chunk(0, 10), T0);
    t.observe(disk.chunk(20, 30), T0);
    // Restart: lines 10-19 waited in the filesystem buffer and are sent by the new process.
    t.observe(second.chunk(0, 10), T0 + 60_000);
    t.observe(disk.chunk(10, 20), T0 + 61_000);
    t.observe(second.chunk(10, 20), T0 + 62_000);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ missingBytes: 0, pendingBytes: 0, receivedBytes: disk.bytes(0, 50), sequencesStarted: 2 });
  });

  it('a stretch lost before a restart is still found in the read it belongs to', () => {
    const disk = new ExportFile('events.log', 'a').write(50);
    const second = new ExportFile('events.log', 'x');
    second.lines.push(...disk.lines.slice(30));
    const t = new UpstreamGaps(options());
    t.observe(disk.chunk(0, 10), T0);
    t.observe(disk.chunk(20, 30), T0);
    t.observe(second.chunk(0, 20), T0 + 60_000);
    const r = t.closeWindow(T0 + 10 * GRACE);
    expect(r.missing).toEqual([{ file: 'events.log', bytes: disk.bytes(10, 20), ranges: [[disk.offsetOf(10), disk.offsetOf(20)]] }]);
  });

  it('the head of a new read arriving after its next chunk is placed in the new read (the old read was longer)', () => {
    const old = new ExportFile('events.log', 'old').write(60);
    const next = new ExportFile('events.log', 'new').write(30);
    const t = new UpstreamGaps(options());
    t.observe(old.chunk(0, 60), T0);
    t.observe(next.chunk(10, 20), T0 + 1000);
    t.observe(next.chunk(20, 30), T0 + 1500);
    t.observe(next.chunk(0, 10), T0 + 2000);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ missingBytes: 0, receivedBytes: old.bytes(0, 60) + next.bytes(0, 30), unplacedBytes: 0, duplicateBytes: 0 });
  });

  it('the head of a new read arriving after its next chunk is placed in the new read (the old read was shorter)', () => {
    const old = new ExportFile('events.log', 'old').write(5);
    const next = new ExportFile('events.log', 'new').write(30);
    const t = new UpstreamGaps(options());
    t.observe(old.chunk(0, 5), T0);
    t.observe(next.chunk(10, 20), T0 + 1000);
    t.observe(next.chunk(0, 10), T0 + 2000);
    t.observe(next.chunk(20, 30), T0 + 3000);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ missingBytes: 0, pendingBytes: 0, receivedBytes: old.bytes(0, 5) + next.bytes(0, 30) });
  });

  it('a loss in a new read is found even while it is shorter than the read before it', () => {
    const old = new ExportFile('events.log', 'old').write(80);
    const next = new ExportFile('events.log', 'new').write(40);
    const t = new UpstreamGaps(options());
    t.observe(old.chunk(0, 80), T0);
    t.observe(next.chunk(0, 10), T0 + 1000);
    t.observe(next.chunk(20, 40), T0 + 2000);
    expect(t.closeWindow(T0 + 10 * GRACE).missing).toEqual([{ file: 'events.log', bytes: next.bytes(10, 20), ranges: [[next.offsetOf(10), next.offsetOf(20)]] }]);
  });

  it('a head read twice (a file Fluent Bit forgot and found again) is a duplicate, not a new read', () => {
    const f = new ExportFile('events-2026-01-01T00-00-00.000.log', 'a').write(20);
    const t = new UpstreamGaps(options());
    t.observe(f.chunk(0, 20), T0);
    t.observe(f.chunk(0, 20), T0 + 10 * GRACE);
    expect(t.closeWindow(T0 + 20 * GRACE)).toMatchObject({ missingBytes: 0, duplicateBytes: f.bytes(0, 20), sequencesStarted: 1 });
  });

  it('files are told apart by name: a backup and the live file', () => {
    const backup = new ExportFile('events-2026-01-01T00-00-00.000.log', 'b').write(20);
    const live = new ExportFile('events.log', 'l').write(20);
    const t = new UpstreamGaps(options());
    t.observe([...backup.chunk(0, 10), ...live.chunk(0, 5)], T0);
    t.observe([...live.chunk(5, 20), ...backup.chunk(15, 20)], T0 + 1000);
    const r = t.closeWindow(T0 + 10 * GRACE);
    expect(r.missing).toEqual([{ file: backup.name, bytes: backup.bytes(10, 15), ranges: [[backup.offsetOf(10), backup.offsetOf(15)]] }]);
    expect(r.filesTracked).toBe(2);
  });
});

describe('upstream gaps: bounded, and what is given up is counted', () => {
  it('past maxHolesPerSequence the lowest stretch awaited is given up, neither seen nor called missing', () => {
    const f = new ExportFile('events.log', 'a').write(10);
    const t = new UpstreamGaps(options({ maxHolesPerSequence: 2 }));
    for (const i of [0, 2, 4, 6, 8]) t.observe(f.chunk(i, i + 1), T0);
    const r = t.closeWindow(T0 + GRACE);
    expect(r.givenUpBytes).toBe(f.bytes(1, 2) + f.bytes(3, 4));
    expect(r.missingBytes).toBe(f.bytes(5, 6) + f.bytes(7, 8));
  });

  it('past maxFiles the file seen least recently and awaiting nothing is given up; when it comes back, its head is not expected', () => {
    const [a, b, c] = ['a.log', 'b.log', 'c.log'].map((n) => new ExportFile(n, n).write(20));
    const t = new UpstreamGaps(options({ maxFiles: 2 }));
    t.observe(a!.chunk(0, 10), T0);
    t.observe(b!.chunk(0, 5), T0 + 1);
    t.observe(b!.chunk(10, 20), T0 + 2);
    // c.log makes a third file: a.log goes (b.log still awaits a stretch); then a.log comes back and c.log goes.
    t.observe(c!.chunk(0, 10), T0 + 3);
    t.observe(a!.chunk(10, 20), T0 + 4);
    const r = t.closeWindow(T0 + 10 * GRACE);
    expect(r).toMatchObject({ filesGivenUp: 2, givenUpBytes: 0, filesTracked: 2 });
    expect(r.missing).toEqual([{ file: 'b.log', bytes: b!.bytes(5, 10), ranges: [[b!.offsetOf(5), b!.offsetOf(10)]] }]);
  });

  it('when every file awaits something, the one seen least recently is given up with what it awaited', () => {
    const [a, b] = ['a.log', 'b.log'].map((n) => new ExportFile(n, n).write(20));
    const t = new UpstreamGaps(options({ maxFiles: 1 }));
    t.observe(a!.chunk(0, 5), T0);
    t.observe(a!.chunk(10, 20), T0);
    t.observe(b!.chunk(0, 20), T0 + 1);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ filesGivenUp: 1, givenUpBytes: a!.bytes(5, 10), missingBytes: 0 });
  });

  it('past maxSequencesPerFile the oldest read of a name is given up with what it awaited', () => {
    const t = new UpstreamGaps(options({ maxSequencesPerFile: 1 }));
    const a = new ExportFile('events.log', 'a').write(20);
    const b = new ExportFile('events.log', 'b').write(20);
    t.observe(a.chunk(0, 5), T0);
    t.observe(a.chunk(10, 20), T0);
    t.observe(b.chunk(0, 20), T0 + 1000);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ givenUpBytes: a.bytes(5, 10), missingBytes: 0, sequencesStarted: 2 });
  });

  it('ranges that fit no read are kept up to maxUnplacedPerFile, then counted unplaced', () => {
    const a = new ExportFile('events.log', 'a').write(40);
    const t = new UpstreamGaps(options({ maxUnplacedPerFile: 1 }));
    t.observe(a.chunk(0, 40), T0);
    // Pieces of a read whose head never arrives, inside what the first read already holds.
    const other = new ExportFile('events.log', 'z').write(30);
    t.observe(other.chunk(10, 20), T0 + 1000);
    t.observe(other.chunk(20, 30), T0 + 2000);
    expect(t.closeWindow(T0 + 10 * GRACE)).toMatchObject({ unplacedBytes: other.bytes(10, 30), missingBytes: 0, receivedBytes: a.bytes(0, 40) });
  });

  it('the options are checked', () => {
    expect(upstreamGapsOptionsSchema.safeParse({ graceMs: 10 }).success).toBe(false);
    expect(upstreamGapsOptionsSchema.safeParse({ maxFiles: 0 }).success).toBe(false);
    expect(upstreamGapsOptionsSchema.safeParse({ maxfiles: 3 }).success).toBe(false);
    expect(upstreamGapsOptionsSchema.parse({})).toMatchObject({ graceMs: 300_000, maxFiles: 64 });
  });
});

describe('upstream gaps: state is plain JSON, snapshotted and restored', () => {
  it('a restored tracker goes on where the snapshot was taken; the wait of its holes restarts at the restore', () => {
    const f = new ExportFile('events.log', 'a').write(40);
    const t = new UpstreamGaps(options());
    t.observe(f.chunk(0, 10), T0);
    t.observe(f.chunk(20, 30), T0);
    const state = JSON.parse(JSON.stringify(t.snapshot())) as unknown;
    expect(state).toEqual(t.snapshot());
    const restoredAt = T0 + GRACE - 1;
    const r = UpstreamGaps.restore(options(), state, restoredAt);
    if (!r.ok) throw new Error(r.reason);
    // Counts of the window open at the snapshot carry over; the hole still waits.
    expect(r.tracker.closeWindow(restoredAt + GRACE - 1)).toMatchObject({ missingBytes: 0, pendingBytes: f.bytes(10, 20), receivedBytes: f.bytes(0, 10) + f.bytes(20, 30) });
    r.tracker.observe(f.chunk(30, 40), restoredAt + 1000);
    // A chunk sent again after the crash (hubble-adx answered it before the snapshot) is a duplicate.
    r.tracker.observe(f.chunk(0, 10), restoredAt + 2000);
    expect(r.tracker.closeWindow(restoredAt + GRACE)).toMatchObject({ missingBytes: f.bytes(10, 20), duplicateBytes: f.bytes(0, 10), receivedBytes: f.bytes(30, 40) });
  });

  it('a restore refuses what is not a snapshot, saying why', () => {
    const t = new UpstreamGaps(options());
    t.observe(new ExportFile('events.log', 'a').write(3).chunk(0, 3), T0);
    const good = t.snapshot();
    expect(UpstreamGaps.restore(options(), { version: 2 }, T0)).toMatchObject({ ok: false, reason: expect.stringContaining('version') });
    const bad = structuredClone(good);
    bad.files[0]!.sequences[0]!.holes.push([50, 10, T0]);
    expect(UpstreamGaps.restore(options(), bad, T0)).toMatchObject({ ok: false, reason: expect.stringContaining('holes') });
    expect(UpstreamGaps.restore(options(), good, T0).ok).toBe(true);
  });
});

describe('linePosition: a record read with Path_Key log_file and Offset_Key log_offset', () => {
  it('takes file, offset and line from the record; anything else carries no position', () => {
    expect(linePosition({ log_file: '/var/log/acns/hubble/events.log', log_offset: 0, log: '{}' })).toEqual({ file: '/var/log/acns/hubble/events.log', offset: 0, line: '{}' });
    expect(linePosition({ log: '{}', time: '2026-01-01T00:00:00Z', stream: 'stdout' })).toBeNull();
    expect(linePosition({ log_file: 'a', log_offset: -1, log: '{}' })).toBeNull();
    expect(linePosition({ log_file: 'a', log_offset: 1.5, log: '{}' })).toBeNull();
    expect(linePosition({ log_file: 'a', log_offset: '3', log: '{}' })).toBeNull();
    expect(linePosition({ log_file: 'a', log_offset: 3, log: { nested: 1 } })).toBeNull();
  });
});
