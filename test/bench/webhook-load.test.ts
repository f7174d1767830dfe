import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWebhookAnswers, starshipRequests, webhookWrkScript } from '../../bench/webhook-load.js';
import { tempPath, wrk } from '../../bench/wrk.js';
import { verifyStarship } from '../../src/webhooks/signatures.js';
import { secret } from '../support/secrets.js';

/**
 * The receiving figure in bench/RESULTS.md counts events that were new, validly signed and stored.
 * A request the broker refused, or one sent twice, would make it measure something else, so the
 * generated requests are checked with the broker's own verifier, and the wrk script (Lua, which the
 * typechecker never sees) is run by wrk against a server that answers as the broker does.
 */
const webhookSecret = secret('bench-webhook-test-secret-0123456789');
const timestampS = Math.floor(Date.now() / 1000);

interface Parsed {
  requestLine: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A raw HTTP/1.1 request split as a server would: request line, headers, and exactly Content-Length bytes of body. */
function parse(raw: string): Parsed {
  const bytes = Buffer.from(raw, 'utf8');
  const end = bytes.indexOf('\r\n\r\n');
  expect(end).toBeGreaterThan(0);
  const [requestLine = '', ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers: IncomingHttpHeaders = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = bytes.subarray(end + 4);
  expect(Number(headers['content-length'])).toBe(body.length);
  return { requestLine, headers, body };
}

describe('bench starshipRequests', () => {
  const batch = { url: 'http://127.0.0.1:4567/v1/webhooks/starship', secret: webhookSecret, timestampS, idPrefix: 'evt_test', count: 200 };
  const requests = starshipRequests(batch);

  it('writes the requested number of requests, each a POST to the route with its Host', () => {
    expect(requests).toHaveLength(200);
    for (const raw of requests) {
      const { requestLine, headers } = parse(raw);
      expect(requestLine).toBe('POST /v1/webhooks/starship HTTP/1.1');
      expect(headers.host).toBe('127.0.0.1:4567');
      expect(headers['content-type']).toBe('application/json');
      // The data file separates requests with NUL.
      expect(raw.includes('\0')).toBe(false);
    }
  });

  it('signs every one so that the broker’s verifier accepts it', () => {
    for (const raw of requests) {
      const { headers, body } = parse(raw);
      expect(verifyStarship(headers, body, { secrets: [webhookSecret], nowMs: timestampS * 1000, toleranceS: 300 })).toBeUndefined();
    }
    // …and not because the verifier accepts anything.
    const { headers, body } = parse(requests[0] ?? '');
    expect(verifyStarship(headers, body, { secrets: [`${webhookSecret}x`], nowMs: timestampS * 1000, toleranceS: 300 })).toBe(
      'bad_signature',
    );
  });

  it('gives every request a JSON object with an id of its own, so that none is a duplicate', () => {
    const ids = requests.map((raw) => (JSON.parse(parse(raw).body.toString('utf8')) as { id: string; event_type: string }).id);
    expect(new Set(ids).size).toBe(200);
    expect(ids.every((id) => id.startsWith('evt_test_'))).toBe(true);
    // Another batch's prefix gives other ids.
    const other = starshipRequests({ ...batch, idPrefix: 'evt_other', count: 1 });
    expect(ids).not.toContain((JSON.parse(parse(other[0] ?? '').body.toString('utf8')) as { id: string }).id);
  });
});

describe('bench parseWebhookAnswers', () => {
  it('reads the line the script prints after the report', () => {
    const output = 'Requests/sec:  2500.00\nTransfer/sec:      1.00MB\nwebhook answers: fresh 9990, duplicate 0, other 10\n';
    expect(parseWebhookAnswers(output)).toEqual({ fresh: 9990, duplicate: 0, other: 10 });
  });

  it('refuses output without it, quoting the output', () => {
    expect(() => parseWebhookAnswers('Requests/sec:  2500.00')).toThrow(/Requests\/sec/);
  });
});

describe('bench webhookWrkScript, run by wrk', () => {
  /** Answers as the broker does: 401 unless verified, then 200, with `"duplicate":true` for an id seen before. */
  const seen = new Set<string>();
  let refused = 0;
  let server: Server;
  let url = '';

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const refusal = verifyStarship(req.headers, body, { secrets: [webhookSecret], nowMs: Date.now(), toleranceS: 300 });
        if (refusal !== undefined) {
          refused++;
          res.writeHead(401).end();
          return;
        }
        const { id } = JSON.parse(body.toString('utf8')) as { id: string };
        const duplicate = seen.has(id);
        seen.add(id);
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(duplicate ? '{"received":true,"duplicate":true}' : '{"received":true}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/webhooks/starship`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends each request in turn, and counts new, duplicate and refused answers', async () => {
    // Fewer requests than a second of wrk sends: it goes round, and the second time they are duplicates.
    const requests = starshipRequests({
      url,
      secret: webhookSecret,
      timestampS: Math.floor(Date.now() / 1000),
      idPrefix: 'evt_wrk',
      count: 40,
    });
    const data = tempPath('webhook-load-test.raw');
    const script = tempPath('webhook-load-test.lua');
    writeFileSync(data, requests.join('\0'));
    writeFileSync(script, webhookWrkScript(data));

    const run = await wrk({ url, method: 'POST' }, { threads: 1, connections: 4, seconds: 1, timeoutS: 5 }, script);
    const answers = parseWebhookAnswers(run.stdout);

    expect(refused).toBe(0);
    expect(answers.other).toBe(0);
    expect([...seen].sort()).toEqual(Array.from({ length: 40 }, (_, i) => `evt_wrk_${i}`).sort());
    expect(answers.fresh).toBe(40);
    expect(answers.duplicate).toBeGreaterThan(0);
    expect(answers.fresh + answers.duplicate + answers.other).toBe(run.requests);
  });
});
