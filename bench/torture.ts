/**
 * npm run torture [-- --cycles 200 --seed 1 --lanes 2 --flows-per-body 30 --check-every 1 --traffic-ms 300,1500 --only sigstop,kill9]
 * Kills the service (kill -9, SIGSTOP past the lock's stale time, SIGTERM, a full disk on a tmpfs
 * when run as root, ADX outages) at random moments while clients post and retry as Fluent Bit does,
 * and checks that nothing answered 200 is lost and that coverage counts every flow exactly once.
 */
import { parseArgs } from 'node:util';
import { containerNodeOptions } from '../test/support/container-node-options.js';
import { torture } from '../test/support/torture.js';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    lanes: { type: 'string', default: '2' },
    'flows-per-body': { type: 'string', default: '30' },
    'check-every': { type: 'string', default: '1' },
    'traffic-ms': { type: 'string', default: '300,1500' },
    'no-tmpfs': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});

const report = await torture({
  seed: Number(values.seed),
  cycles: Number(values.cycles),
  lanes: Number(values.lanes),
  flowsPerBody: Number(values['flows-per-body']),
  checkEvery: Number(values['check-every']),
  trafficMs: values['traffic-ms']!.split(',').map(Number) as [number, number],
  nodeOptions: containerNodeOptions(),
  tmpfs: !values['no-tmpfs'],
  only: values.only ? (values.only.split(',') as ('sigterm' | 'sigstop' | 'enospc' | 'kill9')[]) : undefined,
  log: (l) => process.stderr.write(l + '\n'),
});
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
const ok = report.lost === 0 && report.allowedMissing === 0 && report.coverageMismatches.length === 0 && report.unexpectedExits.length === 0;
process.stdout.write(ok ? 'torture: 0 lost, coverage exact, no unexpected exit\n' : 'torture: FAILED\n');
process.exitCode = ok ? 0 : 1;
