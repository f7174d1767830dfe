import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { FrontendAuthConfig } from '../config/load-config.js';
import { AppError } from '../errors.js';
import { noMetrics, type AuthMetrics } from '../observability/metrics.js';
import { createVerifiedTokenCache } from './verified-token-cache.js';

/** What the public door knows about its caller: the verified user, or nobody when auth is off. */
export interface FrontendUser {
  userId: string | undefined;
}

const asymmetricAlgorithms = ['RS256', 'ES256'];
const clockToleranceS = 30;

/** Names the signed-in user from an Authorization header, or throws `unauthenticated`. */
export type UserIdentifier = (authorization: string | undefined) => Promise<FrontendUser>;

/**
 * Verifies the app's own user JWT and names its user. The id comes from the configured claim of a
 * verified token and nowhere else: whoever picks it can act as that user.
 */
export function frontendAuth(config: FrontendAuthConfig, now: () => number = Date.now, metrics: AuthMetrics = noMetrics): UserIdentifier {
  if (config.mode === 'none') {
    const anonymous: FrontendUser = { userId: undefined };
    return () => Promise.resolve(anonymous);
  }

  // Imported once: handed raw bytes, jose would import the HMAC key again on every verification.
  const secretBytes = config.secret === undefined ? undefined : new TextEncoder().encode(config.secret);
  const secret =
    secretBytes === undefined
      ? undefined
      : crypto.subtle.importKey('raw', secretBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const jwks = config.jwksUrl === undefined ? undefined : publishedKeys(config.jwksUrl);
  const verified = createVerifiedTokenCache({ now, toleranceS: clockToleranceS });
  const claimChecks = {
    clockTolerance: clockToleranceS,
    requiredClaims: ['exp'],
    ...(config.issuer !== undefined && { issuer: config.issuer }),
    ...(config.audience !== undefined && { audience: config.audience }),
  };

  async function verify(token: string): Promise<JWTPayload> {
    const cached = verified.get(token);
    if (cached !== undefined) {
      metrics.userToken('cached');
      return cached;
    }
    // The algorithm picks the key, and each key accepts only its own pinned algorithms, so an
    // HS256 token can never be checked against a public key (the classic algorithm-confusion hole).
    const { alg } = decodeProtectedHeader(token);
    const checks = { ...claimChecks, currentDate: new Date(now()) };
    let payload: JWTPayload;
    if (alg === 'HS256' && secret !== undefined) {
      payload = (await jwtVerify(token, await secret, { ...checks, algorithms: ['HS256'] })).payload;
    } else if (alg !== undefined && asymmetricAlgorithms.includes(alg) && jwks !== undefined) {
      payload = (await jwtVerify(token, jwks, { ...checks, algorithms: asymmetricAlgorithms })).payload;
    } else {
      throw new joseErrors.JOSEAlgNotAllowed('algorithm not accepted');
    }
    verified.set(token, payload);
    metrics.userToken('verified');
    return payload;
  }

  return async (authorization) => {
    const match = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i.exec(authorization ?? '');
    if (match?.[1] === undefined) throw new AppError('unauthenticated', 'Send the signed-in user’s token as Authorization: Bearer <jwt>.');

    let payload: JWTPayload;
    try {
      payload = await verify(match[1]);
    } catch (error) {
      if (error instanceof AppError) throw error;
      metrics.userToken('rejected');
      const reason = error instanceof joseErrors.JOSEError ? error.code : 'malformed token';
      throw new AppError('unauthenticated', 'The user token is not valid.', { logFields: { reason } });
    }

    const userId = claimAsId(payload[config.userClaim]);
    if (userId === undefined) throw new AppError('unauthenticated', 'The user token does not identify a user.');
    return { userId };
  };
}

/**
 * The identity provider's JWKS, fetched and cached by jose. A JWKS that cannot be loaded means "we
 * cannot check right now" (503), not "you are not signed in" (401), which would sign users out.
 */
function publishedKeys(url: string): JWTVerifyGetKey {
  const jwks = createRemoteJWKSet(new URL(url), { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
  return async (header, token) => {
    try {
      return await jwks(header, token);
    } catch (error) {
      if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) throw error;
      throw new AppError('auth_unavailable', 'The identity provider’s keys could not be loaded; try again shortly.', {
        logFields: { reason: error instanceof joseErrors.JOSEError ? error.code : 'jwks fetch failed' },
        cause: error,
      });
    }
  };
}

function claimAsId(claim: unknown): string | undefined {
  if (typeof claim === 'number' && Number.isSafeInteger(claim)) return String(claim);
  if (typeof claim === 'string' && claim.length > 0 && claim.length <= 255) return claim;
  return undefined;
}
