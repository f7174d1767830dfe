/**
 * Builds the URL a frontend navigates to: Benji's hosted page with the token as `connect_token`.
 * The URL API keeps any query Benji put there (a `connect_token` already in it is replaced). Only
 * http(s) URLs qualify: a frontend navigates to this value, so a `javascript:` URL would be script.
 *
 * Benji hands out the same connect URL for every token of an account, so each URL is parsed once
 * and kept as the text before and after the token (a handful of URLs at most): parsing and
 * serialising a URL on every call was a clear cost (bench/README.md). The token is encoded exactly
 * as URLSearchParams encodes a value.
 */
export function hostedConnectUrls(maxUrls = 16): (connectUrl: string, token: string) => string | null {
  const templates = new Map<string, Template | null>();
  return (connectUrl, token) => {
    let template = templates.get(connectUrl);
    if (template === undefined) {
      template = templateOf(connectUrl);
      if (templates.size >= maxUrls) templates.clear();
      templates.set(connectUrl, template);
    }
    return template === null ? null : template.beforeToken + formEncode(token) + template.afterToken;
  };
}

interface Template {
  beforeToken: string;
  afterToken: string;
}

function templateOf(connectUrl: string): Template | null {
  const url = URL.canParse(connectUrl) ? new URL(connectUrl) : undefined;
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
  url.searchParams.delete('connect_token');
  // From the href, not url.hash, which reads '' for an empty fragment (a bare `#`).
  const fragmentAt = url.href.indexOf('#');
  const fragment = fragmentAt === -1 ? '' : url.href.slice(fragmentAt);
  url.hash = '';

  return { beforeToken: `${url.href}${url.search === '' ? '?' : '&'}connect_token=`, afterToken: fragment };
}

/** application/x-www-form-urlencoded, as URLSearchParams writes it: encodeURIComponent spares `!'()~` and writes a space as %20. */
function formEncode(value: string): string {
  let encoded: string;
  try {
    encoded = encodeURIComponent(value);
  } catch {
    // A lone surrogate: URLSearchParams replaces it rather than failing.
    return new URLSearchParams({ v: value }).toString().slice(2);
  }
  return encoded.replace(/[!'()~]|%20/g, (match) => (match === '%20' ? '+' : `%${match.charCodeAt(0).toString(16).toUpperCase()}`));
}
