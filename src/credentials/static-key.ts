import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { CallHeaders, Credential } from './credential.js';

/**
 * A key that never expires (Benji's partner key; Starship's API key, with signing on top): the
 * same headers on every call, nothing to renew. A 401 is the upstream refusing the key itself, so
 * it is passed through, counted, and logged at error at most once a minute, saying what to check.
 */
export interface StaticKeyOptions {
  headers: CallHeaders;
  upstream: 'benji' | 'starship';
  /** The log line of a refusal: what an operator should check. */
  refusedMessage: string;
  clock: Clock;
  logger: Logger;
  /** Counts each call the upstream refused. */
  onRejected: () => void;
}

export function createStaticKeyCredential({ headers, ...refusal }: StaticKeyOptions): Credential {
  return { headersFor: async () => headers, rejected: rejectionReporter(refusal) };
}

const rejectionLogIntervalMs = 60_000;

/** The `rejected` of a key that cannot be renewed: counted, logged at most once a minute, never replayed. */
export function rejectionReporter({
  upstream,
  refusedMessage,
  clock,
  logger,
  onRejected,
}: Omit<StaticKeyOptions, 'headers'>): Credential['rejected'] {
  let loggedAt = Number.NEGATIVE_INFINITY;
  return async () => {
    onRejected();
    const now = clock();
    if (now - loggedAt >= rejectionLogIntervalMs) {
      loggedAt = now;
      logger.error({ upstream }, refusedMessage);
    }
    return false;
  };
}
