import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { FrontendAuthConfig } from '../../config/load-config.js';
import { AppError } from '../../errors.js';
import { noMetrics, type AuthMetrics } from '../../observability/metrics.js';
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
  const { maxAgeS } = config;
  const claimChecks = {
    clockTolerance: clockToleranceS,
    requiredClaims: ['exp'],
    ...(config.issuer !== undefined && { issuer: config.issuer }),
    ...(config.audience !== undefined && { audience: config.audience }),
  };

  /**
   * jose checks `exp` and `nbf` against now; nothing bounds how far ahead `exp` may lie. A token
   * that claims to live for years, or to be issued in the future, is a leaked or mis-minted one.
   * `exp` is a number here: jose required and type-checked it.
   */
  function checkLifetime(payload: JWTPayload): void {
    const nowS = now() / 1000;
    if (payload.iat !== undefined && payload.iat > nowS + clockToleranceS) throw new TokenRefused('issued_in_future');
    if ((payload.exp as number) - (payload.iat ?? nowS) > maxAgeS) throw new TokenRefused('lifetime_too_long');
  }

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
      throw new TokenRefused('algorithm_not_accepted');
    }
    checkLifetime(payload);
    verified.set(token, payload);
    metrics.userToken('verified');
    return payload;
  }

  return async (authorization) => {
    const match = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i.exec(authorization ?? '');
    if (match?.[1] === undefined) {
      throw new AppError('unauthenticated', 'Send the signed-in user’s token as Authorization: Bearer <jwt>.', {
        logFields: { reason: 'no_bearer_token' },
      });
    }

    let payload: JWTPayload;
    try {
      payload = await verify(match[1]);
    } catch (error) {
      if (error instanceof AppError) throw error;
      metrics.userToken('rejected');
      // The caller learns only that the token is not valid; the operator reads why in the log line.
      throw new AppError('unauthenticated', 'The user token is not valid.', { logFields: { reason: refusalReason(error) } });
    }

    const userId = claimAsId(payload[config.userClaim]);
    if (userId === undefined) {
      throw new AppError('unauthenticated', 'The user token does not identify a user.', { logFields: { reason: 'no_user_claim' } });
    }
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

/** A refusal of our own (not jose's), named by its log reason. */
class TokenRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** Claims jose names in its errors; anything else is reported as `invalid_claims`. */
const knownClaims = new Set(['exp', 'nbf', 'iat', 'iss', 'aud', 'sub']);

/**
 * Why a user token was refused, for the request log line: a fixed word, never a value from the
 * token (jose's messages and errors carry the claims, so neither is logged).
 */
function refusalReason(error: unknown): string {
  if (error instanceof TokenRefused) return error.reason;
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = knownClaims.has(error.claim) ? error.claim : undefined;
    if (claim === undefined) return 'invalid_claims';
    if (error.reason === 'missing') return `missing_${claim}`;
    if (error.reason === 'invalid') return `invalid_${claim}`;
    if (claim === 'nbf') return 'not_yet_valid';
    if (claim === 'aud') return 'wrong_audience';
    if (claim === 'iss') return 'wrong_issuer';
    return `invalid_${claim}`;
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'no_matching_key';
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys) return 'ambiguous_key';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm_not_accepted';
  return 'malformed';
}

function claimAsId(claim: unknown): string | undefined {
  if (typeof claim === 'number' && Number.isSafeInteger(claim)) return String(claim);
  if (typeof claim === 'string' && claim.length > 0 && claim.length <= 255) return claim;
  return undefined;
}
