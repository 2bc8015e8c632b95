/**
 * `npm run fuzz`: mutated Fluent Bit bodies against the service as the image runs it. Prints what
 * came back and exits non-zero on a crash, a hang, a 5xx other than 503, a dead-letter row count
 * over its bound or RSS over the container's limit.
 */
import { parseArgs } from 'node:util';
import { fuzz } from '../test/support/fuzz.js';

const CONTAINER_LIMIT_MIB = 384;
const DEAD_LETTER_ROWS_PER_REQUEST = 100 + 1;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      bodies: { type: 'string', default: '10000' },
      seconds: { type: 'string', default: '900' },
      seed: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '2' },
    },
  });
  const report = await fuzz({
    bodies: Number(values.bodies),
    maxSeconds: Number(values.seconds),
    seed: Number(values.seed),
    concurrency: Number(values.concurrency),
    hangMs: 10_000,
    log: (l) => console.error(l),
  });
  console.log(JSON.stringify(report, null, 2));
  const failed =
    report.crashes > 0 || report.hangs > 0 || report.unexpected5xx > 0 || !report.deliveredAfter ||
    report.peakRssMiB >= CONTAINER_LIMIT_MIB || report.maxDeadLetterRowsPerRequest > DEAD_LETTER_ROWS_PER_REQUEST;
  console.log(failed ? 'FAILED' : 'passed');
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
