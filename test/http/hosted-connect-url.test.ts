import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostedConnectUrls } from '../../src/http/public/hosted-connect-url.js';

/** The plain way, which the template must agree with: parse, set the parameter, serialise. */
function reference(connectUrl: string, token: string): string | null {
  const url = URL.canParse(connectUrl) ? new URL(connectUrl) : undefined;
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
  url.searchParams.set('connect_token', token);
  return url.toString();
}

/** What a browser reads from a URL: everything but the order of the query's parameters. */
function meaning(href: string) {
  const url = new URL(href);
  const params = [...url.searchParams].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  url.search = '';
  return { rest: url.href, params };
}

describe('hosted connect URLs', () => {
  const build = hostedConnectUrls();

  it('add the token to Benji’s URL, keeping its query and fragment', () => {
    expect(build('https://connect.benji.test/c', 'tok')).toBe('https://connect.benji.test/c?connect_token=tok');
    expect(build('https://connect.benji.test/c?theme=dark#top', 'a b+c/=')).toBe(
      'https://connect.benji.test/c?theme=dark&connect_token=a+b%2Bc%2F%3D#top',
    );
    expect(build('https://connect.benji.test/c?connect_token=old&x=1', 'new')).toBe('https://connect.benji.test/c?x=1&connect_token=new');
    expect(build('https://connect.benji.test/c?', 't')).toBe('https://connect.benji.test/c?connect_token=t');
  });

  it('refuse anything but http(s)', () => {
    for (const url of ['', 'not a url', 'javascript:alert(1)', 'data:text/html,x', 'ftp://benji.test/c'])
      expect(build(url, 't')).toBeNull();
  });

  it('mean what the URL API would build, for generated URLs and tokens', () => {
    const connectUrl = fc.oneof(
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc.constantFrom('https://b.test/c?connect_token=x&y=%20z', 'http://b.test/?a=1&a=2#f', 'javascript:void(0)', 'https://b.test/c?'),
    );
    const token = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^[A-Za-z0-9._~!'()*-]+$/));
    const fresh = hostedConnectUrls(2); // a small cache, so that eviction is exercised too
    fc.assert(
      fc.property(connectUrl, token, (url, t) => {
        const ours = fresh(url, t);
        const theirs = reference(url, t);
        if (theirs === null) {
          expect(ours).toBeNull();
          return;
        }

        expect(ours).not.toBeNull();
        expect(meaning(ours as string)).toEqual(meaning(theirs));
        // Without a connect_token of its own, Benji's URL comes back as the URL API writes it.
        if (!new URL(url).searchParams.has('connect_token')) expect(ours).toBe(theirs);
      }),
      { seed: 20261122, numRuns: 2_000 },
    );
  });
});
