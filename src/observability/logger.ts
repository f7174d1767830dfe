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
}

/**
 * pino's `isoTime` (`"time":"2026-11-22T08:15:02.123Z"`), with the part up to the second formatted
 * once a second instead of on every line: `toISOString` per line was ~1% of a proxied call's CPU.
 */
export function isoTimestamp(now: () => number = Date.now): () => string {
  let second = Number.NaN;
  let prefix = '';
  return () => {
    const ms = now();
    const s = Math.floor(ms / 1000);
    if (s !== second) {
      second = s;
      prefix = `,"time":"${new Date(s * 1000).toISOString().slice(0, -4)}`;
    }
    return `${prefix}${String(ms - s * 1000).padStart(3, '0')}Z"`;
  };
}

export function createLogger({ level, destination, scrubLine }: LoggerOptions): Logger {
  const options = {
    level,
    ...(scrubLine !== undefined && { hooks: { streamWrite: scrubLine } }),
    base: { service: 'token-broker' },
    timestamp: isoTimestamp(),
    redact: { paths: redactPaths, censor: '[redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return pino(options, destination);
}
