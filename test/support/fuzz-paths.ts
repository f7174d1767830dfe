import { Agent, request as httpRequest } from 'node:http';
import fc from 'fast-check';

/**
 * Hostile proxy paths for the fuzz tests: encodings, dot segments, backslashes, doubled slashes,
 * foreign origins, after each of `mounts` and, half the time, inside one of `starts` (an allowed
 * prefix, where the attacks matter).
 */
export function hostilePaths(mounts: readonly string[], starts: readonly string[], words: readonly string[]) {
  const segment = fc.oneof(
    fc.constantFrom(...words, 'auth', 'login', 'refresh', 'access', 'token'),
    fc.constantFrom('..', '.', '%2e%2e', '%2E%2e', '.%2e', '%2e.', '%2e', '...', '%252e%252e', '%c0%ae%c0%ae', '%EF%BC%8E%EF%BC%8E'),
    fc.constantFrom('%2f', '%2F', '%5c', '%5C', '\\', '\\..', '%00', '%0a', '%zz', '%', '%25', '%252f'),
    fc.constantFrom('', 'http:', 'https:', 'evil.example.com', '@evil.example.com', 'user:pass@evil', '127.0.0.1:6379', ';x=1', '~', 'a+b'),
    fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{1,12}$/),
  );
  return fc
    .tuple(
      fc.constantFrom(...mounts),
      fc.constantFrom('', '', ...starts),
      fc.array(segment, { maxLength: 6 }),
      fc.option(fc.constantFrom('?a=1', '?x=/../auth', '#frag', '?')),
    )
    .map(([mount, start, parts, tail]) => `${mount}${mount.endsWith('/') ? '' : '/'}${start}${parts.join('/')}${tail ?? ''}`);
}

/** A raw GET (the path sent exactly as generated), answering the status. */
export function rawGetter(port: () => number, authorization: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const get = (target: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: port(), path: target, agent, headers: { authorization } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  return { get, close: () => agent.destroy() };
}

/** Where an upstream would route a raw path it received (WHATWG URL normalisation). */
export function asUpstreamReadsIt(raw: string): string {
  return new URL(raw, 'http://upstream.invalid').pathname;
}
