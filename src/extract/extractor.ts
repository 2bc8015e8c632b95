import { CriPartialJoiner, type PartialFailure } from './cri-partial.js';
import { exporterKindOf, mayCarryRecord, parseHubbleLine } from './hubble-line.js';
import type { DecidedLine, ExporterKind, ExtractOutput, PieceSource, SkipReason } from './types.js';
import { isMap, nonEmpty as str } from '../json-values.js';

export interface ExtractorOptions {
  logKeys: readonly string[];
  mergeLogKey?: string | undefined;
  partialMaxBytes: number;
  partialMaxAgeMs: number;
  partialMaxLines: number;
  partialMaxTotalBytes: number;
  /** Longest line parsed; a longer one is dead-lettered without being parsed. */
  maxLineBytes: number;
}


/**
 * Turns Fluent Bit records of cilium-agent's container log into Hubble exporter records. It copes
 * with every shape Fluent Bit produces: the raw line under `log`/`message` (cri multiline or regex
 * parser, docker parser), a map already merged by the kubernetes filter (top level or under
 * Merge_Log_Key), and CRI partial pieces (`logtag: P`) that it joins per stream.
 */
export class Extractor {
  private readonly joiner: CriPartialJoiner;

  constructor(private readonly opts: ExtractorOptions) {
    this.joiner = new CriPartialJoiner({
      maxBytes: opts.partialMaxBytes,
      maxAgeMs: opts.partialMaxAgeMs,
      maxLines: opts.partialMaxLines,
      maxTotalBytes: opts.partialMaxTotalBytes,
    });
  }

  get pendingPartials(): number {
    return this.joiner.size;
  }

  get pendingPartialBytes(): number {
    return this.joiner.bytes;
  }

  /** Unfinished lines given up to make room for newer ones since the start. */
  get evictedPartials(): number {
    return this.joiner.evicted;
  }

  /**
   * Why a record certainly makes nothing (no row, no dead letter, no piece of a line), or null
   * when it may: an ordinary agent log line, or a record with no log field. Pure: it changes no
   * state, so a request can be judged before it is spooled.
   */
  junkReason(rec: Record<string, unknown>): SkipReason | null {
    const merged = this.opts.mergeLogKey ? rec[this.opts.mergeLogKey] : rec;
    if (isMap(merged) && exporterKindOf(merged)) return null;
    if (rec.logtag === 'P' || rec.logtag === 'F') return null;
    for (const key of this.opts.logKeys) {
      const v = rec[key];
      if (typeof v !== 'string') continue;
      if (v.length === 0) return 'empty_line';
      return mayCarryRecord(v) || v.charCodeAt(0) === 0x7b ? null : 'agent_log';
    }
    return 'no_log_field';
  }

  /**
   * What one record is: a record, a skip or a dead letter, told to `out` (the request's own
   * output). `source`: who brought it, remembered by the lines its partial pieces are part of.
   */
  push(rec: Record<string, unknown>, timeSec: number | null, now: number, out: ExtractOutput, source?: PieceSource): void {
    const merged = this.opts.mergeLogKey ? rec[this.opts.mergeLogKey] : rec;
    if (isMap(merged)) {
      const kind = exporterKindOf(merged);
      if (kind) {
        this.emit(out, kind, merged, rec, timeSec, null);
        return;
      }
    }
    let line: string | null = null;
    for (const key of this.opts.logKeys) {
      const v = rec[key];
      if (typeof v === 'string') {
        line = v;
        break;
      }
    }
    if (line === null) {
      out.skip('no_log_field');
      return;
    }
    // `_p` is deliberately not read: Fluent Bit's cri multiline parser leaves `_p: P` on lines it has
    // already joined. Only the regex parser's `logtag` marks a piece still to be joined.
    const tag = rec.logtag;
    if (tag === 'P') {
      const failures = this.joiner.addPartial(this.streamKey(rec), line, now, source);
      let tooLarge = false;
      for (const f of failures) {
        tooLarge ||= f.reason === 'partial_too_large';
        this.fail(out, f, f.reason === 'partial_too_large' ? rec : null);
        if (f.line.sources.length > 0) out.lineDecided(f.line);
      }
      // This piece is in a dead letter when its line just went over the bound, else it waits.
      if (!tooLarge) out.skip('partial_piece');
      return;
    }
    if (tag === 'F' && this.joiner.size > 0) {
      const whole = this.joiner.complete(this.streamKey(rec), line);
      if (whole.text === null) out.skip('partial_piece');
      else this.line(out, whole.text, rec, timeSec);
      if (whole.line.sources.length > 0) out.lineDecided(whole.line);
      return;
    }
    this.line(out, line, rec, timeSec);
  }

  /**
   * Report partial lines that never completed (all of them at shutdown: `now` infinite); returns the
   * keys of the lines given up, which a replay forgets at the same point (`forget`).
   */
  expire(now: number, out: ExtractOutput): { key: string; line: DecidedLine }[] {
    const given = this.joiner.expire(now);
    for (const f of given) this.fail(out, f, null);
    return given.map((f) => ({ key: f.key, line: f.line }));
  }

  /** When the oldest unfinished line got its first piece, or null when none is pending. */
  get oldestPartialAt(): number | null {
    return this.joiner.oldestAt;
  }

  /** Forget lines a checkpoint gave up before a crash (their dead letters are in that checkpoint). */
  forget(keys: readonly string[]): void {
    for (const k of keys) this.joiner.forget(k);
  }

  private line(out: ExtractOutput, line: string, rec: Record<string, unknown>, timeSec: number | null): void {
    if (line.length > this.opts.maxLineBytes) {
      if (mayCarryRecord(line)) {
        out.dead({ stage: 'extract', reason: 'line_too_long', message: `a ${line.length}-character line exceeds limits.maxLineBytes (${this.opts.maxLineBytes}); not parsed`, raw: line, nodeName: nodeOfRecord(rec) });
      } else {
        out.skip('agent_log');
      }
      return;
    }
    const parsed = parseHubbleLine(line);
    if (parsed.ok) {
      this.emit(out, parsed.kind, parsed.obj, rec, timeSec, line);
    } else if ('skip' in parsed) {
      out.skip(parsed.skip);
    } else {
      out.dead({ stage: 'extract', reason: parsed.dead, message: parsed.message, raw: line, nodeName: nodeOfRecord(rec) });
    }
  }

  private emit(out: ExtractOutput, kind: ExporterKind, obj: Record<string, unknown>, rec: Record<string, unknown>, timeSec: number | null, line: string | null): void {
    out.record({
      line,
      kind,
      payload: obj[kind] as Record<string, unknown>,
      nodeName: str(obj.node_name),
      time: str(obj.time),
      lineTime: str(rec.time),
      lineTimeSec: timeSec,
    });
  }

  private fail(out: ExtractOutput, f: PartialFailure, rec: Record<string, unknown> | null): void {
    const why =
      f.reason === 'partial_too_large'
        ? `CRI partial line exceeded extract.partialMaxBytes (${this.opts.partialMaxBytes}) after ${f.pieces} pieces`
        : f.reason === 'partial_evicted'
          ? `CRI partial line given up after ${f.pieces} pieces to stay within extract.partialMaxLines (${this.opts.partialMaxLines}) and extract.partialMaxTotalBytes (${this.opts.partialMaxTotalBytes}) over all streams`
          : `CRI partial line got no final piece within extract.partialMaxAgeMs (${this.opts.partialMaxAgeMs}) after ${f.pieces} pieces`;
    out.dead({ stage: 'extract', reason: f.reason, message: `${why} (stream ${f.key})`, raw: f.text, nodeName: rec ? nodeOfRecord(rec) : null });
  }

  private streamKey(rec: Record<string, unknown>): string {
    const k = rec.kubernetes;
    const where = isMap(k) ? `${keyPart(k.namespace_name)}/${keyPart(k.pod_name)}/${keyPart(k.container_name)}` : '';
    const file = str(rec.file) ?? str(rec.path) ?? str(rec.filepath) ?? '';
    return `${where}|${file}|${keyPart(rec.stream)}`;
  }
}

/**
 * A part of a stream key: text as it is, a number as its digits, anything else as nothing. A value
 * from the record is never converted with String() or a template: an object's own `toString` (or a
 * `{"toString": 1}` that is not even a function) would run, or throw.
 */
function keyPart(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

function nodeOfRecord(rec: Record<string, unknown>): string | null {
  const k = rec.kubernetes;
  return isMap(k) ? str(k.host) : null;
}
