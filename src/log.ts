import { pino, type Logger } from 'pino';

/**
 * Logs go to stderr (fd 2) so stdout carries only data (NDJSON, tables).
 * Level from WITNESS_LOG_LEVEL; default 'info'.
 */
export const log: Logger = pino(
  { name: 'witness', level: process.env.WITNESS_LOG_LEVEL ?? 'info', base: undefined },
  pino.destination({ fd: 2, sync: true }),
);
