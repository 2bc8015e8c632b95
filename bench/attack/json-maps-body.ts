/**
 * Bodies whose JSON objects each have keys no other object has (a V8 hidden class each), under
 * every body limit of the image's configuration. The `log` of each record starts with `{`, so
 * that a body is never taken for agent log lines only (junk, answered unspooled while parked).
 */
/** json_lines records, each under maxRecordBytes (2 MiB), together under maxDecompressedBytes (8 MiB) and 400,000 containers. */
export function mapsBody(
  tag: string,
  per: number,
  bodyMax = 8 * 1024 * 1024 - 1000,
  maxContainers = 399_000,
  recordMax = 2 * 1024 * 1024 - 20_000,
): Buffer {
  const recs: string[] = [];
  let containers = 0;
  let total = 0;
  let key = 0;
  while (total < bodyMax) {
    const parts: string[] = [];
    let len = 40;
    containers += 2;
    let numbers = false;
    while (len < recordMax && total + len < bodyMax) {
      if (containers < maxContainers) {
        let o = '{';
        for (let k = 0; k < per; k++) o += `${k ? ',' : ''}"${tag}${(key++).toString(36)}":0`;
        o += '}';
        containers++;
        parts.push(o);
        len += o.length + 1;
      } else {
        // Numbers that are not small integers, in an array that also holds a string: one heap number each.
        if (!numbers) parts.push('""');
        numbers = true;
        parts.push('9e9');
        len += 4;
      }
    }
    const t = `{"log":"{x${tag}${recs.length}","a":[${parts.join(',')}]}`;
    recs.push(t);
    total += t.length + 1;
  }
  return Buffer.from(recs.join('\n'));
}
