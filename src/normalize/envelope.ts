/** What surrounds a payload: the exporter record's node_name and time, and the log line's time. */
export interface Envelope {
  nodeName: string | null;
  time: string | null;
  lineTime: string | null;
  lineTimeSec: number | null;
}

/** AKS and Cluster Mesh write node_name as `cluster/node`; otherwise the configured cluster applies. */
export function splitNodeName(nodeName: string | null, defaultCluster: string): { cluster: string; node: string | null } {
  if (nodeName === null) return { cluster: defaultCluster, node: null };
  const slash = nodeName.indexOf('/');
  if (slash <= 0 || slash === nodeName.length - 1) return { cluster: defaultCluster, node: nodeName };
  return { cluster: nodeName.slice(0, slash), node: nodeName.slice(slash + 1) };
}

/**
 * The row's event time, most precise source first: the payload's own time, the exporter record's,
 * the log line's (CRI), Fluent Bit's event time; the receive time only when none exists.
 */
export function timeGenerated(payloadTime: string | null, env: Envelope): string {
  if (payloadTime !== null && isRfc3339(payloadTime)) return payloadTime;
  if (env.time !== null && isRfc3339(env.time)) return env.time;
  if (env.lineTime !== null && isRfc3339(env.lineTime)) return env.lineTime;
  if (env.lineTimeSec !== null && env.lineTimeSec >= 0 && env.lineTimeSec < LAST_SECOND) return secondsToIso(env.lineTimeSec);
  return new Date().toISOString();
}

/** 10000-01-01T00:00:00Z: an event time from Fluent Bit at or past it is no time a datetime column holds. */
const LAST_SECOND = 253_402_300_800;

/** Cheap shape check (YYYY-MM-DDTHH:MM:SS...) so that a garbage time never reaches a datetime column. */
export function isRfc3339(s: string): boolean {
  return s.length >= 20 && s.charCodeAt(4) === 0x2d && s.charCodeAt(7) === 0x2d && (s.charCodeAt(10) === 0x54 || s.charCodeAt(10) === 0x74) && s.charCodeAt(13) === 0x3a;
}

function secondsToIso(sec: number): string {
  const whole = Math.floor(sec);
  const nanos = Math.round((sec - whole) * 1e9);
  const base = new Date(whole * 1000).toISOString().slice(0, 19);
  return `${base}.${String(Math.min(nanos, 999_999_999)).padStart(9, '0')}Z`;
}
