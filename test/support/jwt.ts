import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { secret } from './secrets.js';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload, type CryptoKey } from 'jose';

export const jwtSecret = secret('test-frontend-jwt-secret-0123456789abcdef');

interface SignOptions {
  alg?: string;
  key?: CryptoKey | Uint8Array;
  kid?: string;
  expiresInS?: number;
  notBeforeS?: number;
}

/** Signs a user token the way the app's identity provider would. */
export async function signUserToken(claims: JWTPayload, options: SignOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'HS256', ...(options.kid !== undefined && { kid: options.kid }) })
    .setIssuedAt(now);
  if (options.expiresInS !== undefined || claims.exp === undefined) jwt.setExpirationTime(now + (options.expiresInS ?? 300));
  if (options.notBeforeS !== undefined) jwt.setNotBefore(now + options.notBeforeS);
  return secret(await jwt.sign(options.key ?? new TextEncoder().encode(jwtSecret)));
}

export interface JwksServer {
  url: string;
  keys: { rs256: CryptoKey; es256: CryptoKey };
  /** When true the server answers 500, like an identity provider having a bad day. */
  setBroken(broken: boolean): void;
  close(): Promise<void>;
}

/** An identity provider's JWKS endpoint over real HTTP, with one RSA and one EC key. */
export async function startJwksServer(): Promise<JwksServer> {
  const rsa = await generateKeyPair('RS256');
  const ec = await generateKeyPair('ES256');
  const jwks = {
    keys: [
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ],
  };
  let broken = false;
  const server = createServer((_req, res) => {
    if (broken) {
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    keys: { rs256: rsa.privateKey, es256: ec.privateKey },
    setBroken: (value) => void (broken = value),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
