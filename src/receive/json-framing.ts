/**
 * Finds the top-level `{...}` objects in a body that holds JSON objects in an array (`Format json`),
 * back to back (`json_stream`) or one per line (`json_lines`). It only finds where each object
 * starts and ends, tracking strings and nesting; JSON.parse does the parsing. Text between objects
 * that is not whitespace, `[`, `]` or `,` is reported as garbage so that it can be set aside while
 * the objects around it go on. A callback that returns false stops the framing there.
 */
export function frameJsonObjects(
  text: string,
  onObject: (json: string) => boolean,
  onGarbage: (text: string) => boolean,
): void {
  const n = text.length;
  let i = 0;
  let garbageStart = -1;
  // Only the brackets of one outer array separate records: an array inside it is an element that
  // is not a record, reported as garbage like any other (never skipped as if it were a separator).
  let inArray = false;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x5b /* [ */ && inArray) {
      if (garbageStart >= 0) {
        if (!onGarbage(text.slice(garbageStart, i))) return;
        garbageStart = -1;
      }
      const end = objectEnd(text, i);
      if (!onGarbage(text.slice(i, end < 0 ? n : end))) return;
      if (end < 0) return;
      i = end;
      continue;
    }
    if (c === 0x5b) inArray = true;
    else if (c === 0x5d) inArray = false;
    if (c === 0x7b /* { */) {
      if (garbageStart >= 0) {
        if (!onGarbage(text.slice(garbageStart, i))) return;
        garbageStart = -1;
      }
      const end = objectEnd(text, i);
      if (end < 0) {
        onGarbage(text.slice(i));
        return;
      }
      if (!onObject(text.slice(i, end))) return;
      i = end;
      continue;
    }
    const separator = c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x2c || c === 0x5b || c === 0x5d;
    if (!separator && garbageStart < 0) garbageStart = i;
    i++;
  }
  if (garbageStart >= 0) onGarbage(text.slice(garbageStart));
}

/** Index just past the object (or array) that starts at `start`, or -1 when the text ends first. */
function objectEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      else if (c === 0x0a) return i; // a raw newline cannot be inside a JSON string: the object is cut here
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}
