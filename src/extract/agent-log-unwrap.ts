/**
 * cilium-agent can log an exporter record inside an ordinary log line: logrus/slog text
 * (`level=info msg="{\"flow\":...}"`, the value quoted as Go's %q does) or slog JSON
 * (`{"level":"INFO","msg":"{\"flow\":...}"}`). These helpers return the inner JSON text.
 */

/** The value of `msg="..."` in a logfmt line, unquoted, or null. */
export function logfmtMessage(line: string): string | null {
  let at = line.indexOf(' msg="');
  if (at >= 0) at += 6;
  else if (line.startsWith('msg="')) at = 5;
  else return null;
  // Find the closing quote, stepping over escapes.
  let end = at;
  for (; end < line.length; end++) {
    const c = line.charCodeAt(end);
    if (c === 0x5c) end++;
    else if (c === 0x22) break;
  }
  if (end >= line.length) return null;
  return unquoteGo(line.slice(at, end));
}

/**
 * Go's %q output is JSON-compatible except for \x, \a, \v, \U and \' escapes; those are rare in a
 * flow, so JSON.parse takes the common case and only the rest is rewritten first.
 */
function unquoteGo(body: string): string | null {
  try {
    return JSON.parse(`"${body}"`) as string;
  } catch {
    const jsonish = body
      .replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1')
      .replace(/\\U([0-9a-fA-F]{8})/g, (_m, hex: string) => escapeCodePoint(parseInt(hex, 16)))
      .replace(/\\a/g, '\\u0007')
      .replace(/\\v/g, '\\u000b')
      .replace(/\\'/g, "'");
    try {
      return JSON.parse(`"${jsonish}"`) as string;
    } catch {
      return null;
    }
  }
}

function escapeCodePoint(cp: number): string {
  return JSON.stringify(String.fromCodePoint(cp)).slice(1, -1);
}

/** The `msg` of a slog/logrus JSON line when it holds JSON text, or null. */
export function jsonLogMessage(obj: Record<string, unknown>): string | null {
  const msg = obj.msg ?? obj.message;
  return typeof msg === 'string' && msg.charCodeAt(0) === 0x7b ? msg : null;
}
