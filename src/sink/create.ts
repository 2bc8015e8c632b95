import type { Config } from '../config/index.js';
import { LocalFileSink } from './local-files.js';
import type { Sink } from './types.js';

export function createSink(config: Config): Sink {
  switch (config.sink.type) {
    case 'local':
      return new LocalFileSink({ ...config.sink.local, tableNames: config.sink.tables });
  }
}
