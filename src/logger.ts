import type { FastifyBaseLogger } from 'fastify';

/** The one logger type every component takes: pino's, as fastify creates it. */
export type Logger = Pick<FastifyBaseLogger, 'debug' | 'info' | 'warn' | 'error'>;
