/**
 * RFC 3339 text (nanoseconds as Hubble writes them) to microseconds since the Unix epoch, the unit
 * of the Avro mapping's DateTimeFromUnixMicroseconds transform. Date.parse keeps only
 * milliseconds, so the sub-millisecond digits are added from the text.
 */
export function rfc3339ToMicros(s: string): number | null {
  const dot = s.indexOf('.', 19);
  let wholeText = s;
  let micros = 0;
  if (dot > 0) {
    let end = dot + 1;
    while (end < s.length && s.charCodeAt(end) >= 48 && s.charCodeAt(end) <= 57) end++;
    const frac = s.slice(dot + 1, end);
    micros = Number((frac + '000000').slice(0, 6));
    wholeText = s.slice(0, dot) + s.slice(end);
  }
  const ms = Date.parse(wholeText);
  if (Number.isNaN(ms)) return null;
  return ms * 1000 + micros;
}
