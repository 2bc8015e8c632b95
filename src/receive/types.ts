/** One Fluent Bit record as decoded from a request body: the record map and its event time. */
export interface LogRecord {
  record: Record<string, unknown>;
  /** Fluent Bit event time in seconds (EventTime, integer or float timestamp, or the json date key). */
  timeSec: number | null;
}

/** A part of a body that could not be decoded; it goes to the dead-letter table, the rest goes on. */
export interface BadPart {
  reason: string;
  message: string;
  raw: string;
}

export interface Decoded {
  records: LogRecord[];
  bad: BadPart[];
}

/** A body over a limit, found while decoding (which stopped there): which bound it passed. */
export interface TooMany {
  tooMany: 'records' | 'values';
}

export type BodyFormat = 'msgpack' | 'json' | 'json_lines';

/** A body that can never succeed: the status tells Fluent Bit to drop it, the reason is counted. */
export interface BodyError {
  status: 400 | 401 | 413 | 415;
  reason: string;
  message: string;
}
