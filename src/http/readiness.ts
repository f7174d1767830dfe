import { z } from 'zod';
import { starshipCredentialStates, type StarshipStatus } from '../credentials/starship-credential.js';
import type { Door } from './request-logging.js';

export const readinessBody = z.object({
  /** ok and degraded answer 200 (the door serves); unavailable and shutting_down answer 503. */
  status: z.enum(['ok', 'degraded', 'unavailable', 'shutting_down']),
  checks: z.object({
    redis: z.enum(['ok', 'down', 'disabled']),
    starshipToken: z.enum(starshipCredentialStates),
  }),
});
export type Readiness = z.output<typeof readinessBody>;

export interface ReadinessSources {
  redis: () => Readiness['checks']['redis'];
  /** What a proxied Starship call would find now (memory only: probes come often). */
  starship: () => StarshipStatus;
  shuttingDown: () => boolean;
}

/**
 * A door's readiness, meant to say what a call would get now. The public door needs neither Redis
 * nor Starship to serve, so only shutdown takes it out. The internal door is unavailable while
 * every proxied call would fail at once (no usable token, and a backoff or a login cooldown holds
 * renewal off), degraded while calls would first wait for a renewal or Redis is down.
 */
export function readinessOf(door: Door, sources: ReadinessSources): () => Readiness {
  return () => {
    const starship = sources.starship();
    const checks: Readiness['checks'] = { redis: sources.redis(), starshipToken: starship.state };
    if (sources.shuttingDown()) return { status: 'shutting_down', checks };
    if (door === 'internal' && starship.blocked) return { status: 'unavailable', checks };
    const tokenInHand = starship.state === 'valid' || starship.state === 'refreshing' || starship.state === 'static';
    return { status: checks.redis === 'down' || (door === 'internal' && !tokenInHand) ? 'degraded' : 'ok', checks };
  };
}
