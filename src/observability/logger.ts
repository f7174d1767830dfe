import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import type { Scrub } from './secret-scrubber.js';

export type { Logger };

/**
 * Paths censored wherever they appear in a log object. Request logs carry only an allow-listed set
 * of headers (see http/request-logging.ts); this list is the second line of defence, so that a
 * careless `log.info({ headers })` or `log.info({ token })` still prints nothing secret.
 */
const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["x-api-key"]',
  'err.headers.authorization',
  'password',
  'apiKey',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
];

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Where JSON lines go: stdout's batching destination (main.ts), pino-pretty (the demo), a test's capture. */
  destination: DestinationStream;
  /**
   * The last pass over every finished line: removes configured secrets, wherever they came from
   * (an upstream's error text, an exception message), before the line is written.
   */
  scrubLine?: Scrub;
  /** Fields every line gets when they are known (tracing's `traceId` and `spanId`); set only when tracing is on. */
  mixin?: () => object;
}

/**
 * pino's `isoTime`, formatted once per millisecond: under load many lines share one, and formatting
 * a Date is a visible part of each line's cost.
 */
function isoTimeOncePerMs(): () => string {
  let lastMs = Number.NaN;
  let field = '';
  return () => {
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      field = `,"time":"${new Date(now).toISOString()}"`;
    }
    return field;
  };
}

export function createLogger({ level, destination, scrubLine, mixin }: LoggerOptions): Logger {
  const options = {
    level,
    ...(scrubLine !== undefined && { hooks: { streamWrite: scrubLine } }),
    ...(mixin !== undefined && { mixin }),
    base: { service: 'token-broker' },
    timestamp: isoTimeOncePerMs(),
    redact: { paths: redactPaths, censor: '[redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return pino(options, destination);
}
