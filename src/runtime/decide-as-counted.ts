import { readOutcomeSettings } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { Processor } from '../process/index.js';

/**
 * The records that come next are counted by a run whose outcome settings are `outcomes` (as it
 * wrote them into the spool): they are decided by those, so that rows made again after a crash or
 * a stop match the counts on disk, whatever this process is configured with. A run of an older
 * version wrote none: this process's own decide.
 */
export function decideAsCounted(processor: Processor, outcomes: unknown, log: Logger): void {
  if (outcomes === undefined || outcomes === null) {
    processor.decideWith(null);
    return;
  }
  const settings = readOutcomeSettings(outcomes);
  if (settings && processor.decideWith(settings)) return;
  processor.decideWith(null);
  log.warn('the filters, sampling or aggregation of the run that counted what the spool holds are not valid in this version; its records are decided by this configuration, and their rows may not match the counts of that run');
}
