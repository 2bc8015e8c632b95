/**
 * `npm run fuzz`: hostile bodies against the service as the image runs it. Prints what came back
 * and exits non-zero on a crash, a hang, a 5xx other than 503, a dead-letter row count over its
 * bound, RSS over the container's limit, or (records) Object.prototype changed, coverage unbalanced
 * or a valid flow not delivered.
 *
 * --generator mutate   (default) mutated Fluent Bit bodies: captures, generated and hostile ones
 * --generator records  Hubble records with hostile keys and values in every position (fast-check),
 *                      live in the built service and, one body in --parked-every, parked
 * --bodies N --seconds S --seed N (both); --concurrency N (mutate); --parked-every N (records, 0: none)
 */
import { parseArgs } from 'node:util';
import { fuzz } from '../test/support/fuzz.js';
import { recordsFuzz } from '../test/support/records-fuzz.js';

const CONTAINER_LIMIT_MIB = 384;
const DEAD_LETTER_ROWS_PER_REQUEST = 100 + 1;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      generator: { type: 'string', default: 'mutate' },
      bodies: { type: 'string', default: '10000' },
      seconds: { type: 'string', default: '900' },
      seed: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '2' },
      'parked-every': { type: 'string', default: '5' },
    },
  });
  const log = (l: string) => console.error(l);
  if (values.generator === 'records') {
    const report = await recordsFuzz({ bodies: Number(values.bodies), maxSeconds: Number(values.seconds), seed: Number(values.seed), parkedEvery: Number(values['parked-every']), log });
    console.log(JSON.stringify(report, null, 2));
    const failed =
      report.crashes > 0 || report.unexpected5xx > 0 || report.prototypeChanged > 0 || report.undelivered > 0 || report.coverageProblems > 0 ||
      (report.statuses.connection_error ?? 0) > 0 || report.peakRssMiB >= CONTAINER_LIMIT_MIB;
    console.log(failed ? 'FAILED' : 'passed');
    return failed ? 1 : 0;
  }
  if (values.generator !== 'mutate') {
    console.error(`--generator must be mutate or records, not ${values.generator}`);
    return 2;
  }
  const report = await fuzz({
    bodies: Number(values.bodies),
    maxSeconds: Number(values.seconds),
    seed: Number(values.seed),
    concurrency: Number(values.concurrency),
    hangMs: 10_000,
    log,
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
