import { describe, expect, it } from 'vitest';
import { luaString, parseWrkOutput, wrkScript } from '../../bench/wrk.js';

/**
 * Every req/s, latency and failure count in bench/RESULTS.md comes from wrk's text report, parsed
 * here, and every request wrk sends is described by a generated Lua script. A unit read wrong, or
 * a failure line missed, would give plausible figures that are wrong, so the parser is checked
 * against reports wrk 4.1 (Debian's) printed on this machine.
 */
const healthy = `Running 3s test @ http://127.0.0.1:40207/api/v1/products
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.09ms  791.33us   9.38ms   76.89%
    Req/Sec    15.57k     3.34k   25.14k    70.97%
  Latency Distribution
     50%  791.33us
     75%    2.47ms
     90%    2.76ms
     99%    1.20s
  47962 requests in 3.10s, 11.21MB read
Requests/sec:  15458.31
Transfer/sec:      3.61MB
`;

const refused = `Running 3s test @ http://127.0.0.1:40207/api/v1/products
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.09ms  791.33us   9.38ms   76.89%
    Req/Sec    15.57k     3.34k   25.14k    70.97%
  Latency Distribution
     50%    2.06ms
     75%    2.47ms
     90%    2.76ms
     99%    5.37ms
  47962 requests in 3.10s, 11.21MB read
  Socket errors: connect 0, read 3, write 1, timeout 7
  Non-2xx or 3xx responses: 47962
Requests/sec:  15458.31
Transfer/sec:      3.61MB
`;

const nothing = `Running 2s test @ http://127.0.0.1:45999/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 2.01s, 0.00B read
  Socket errors: connect 0, read 4, write 0, timeout 0
Requests/sec:      0.00
Transfer/sec:       0.00B
`;

describe('bench parseWrkOutput', () => {
  it('reads requests, duration, rate and the latency percentiles in ms, whatever unit wrk chose', () => {
    const report = parseWrkOutput(healthy);
    expect(report.p50Ms).toBeCloseTo(0.79133, 9);
    expect(report).toEqual({
      requests: 47962,
      durationS: 3.1,
      rps: 15458.31,
      p50Ms: report.p50Ms,
      p75Ms: 2.47,
      p90Ms: 2.76,
      p99Ms: 1200,
      statusErrors: 0,
      socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 },
    });
  });

  it('counts the failures wrk prints only when there are some', () => {
    const report = parseWrkOutput(refused);
    expect(report.statusErrors).toBe(47962);
    expect(report.socketErrors).toEqual({ connect: 0, read: 3, write: 1, timeout: 7 });
    expect(report.p99Ms).toBe(5.37);
  });

  it('reads a run that got no answer at all', () => {
    const report = parseWrkOutput(nothing);
    expect(report.requests).toBe(0);
    expect(report.rps).toBe(0);
    expect(report.socketErrors.read).toBe(4);
  });

  it('refuses a report without the latency distribution (wrk run without --latency)', () => {
    const withoutLatency = healthy.replace(/ {2}Latency Distribution[\s\S]*?(?= {2}47962)/, '');
    expect(() => parseWrkOutput(withoutLatency)).toThrow(/Latency Distribution/);
  });

  it('refuses what is not a wrk report, quoting it', () => {
    expect(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused')).toThrow(/Connection refused/);
  });

  it('reads minutes', () => {
    const long = healthy.replace('3.10s,', '1.00m,').replace('1.20s', '2.50m');
    expect(parseWrkOutput(long).durationS).toBe(60);
    expect(parseWrkOutput(long).p99Ms).toBe(150_000);
  });
});

/** What Lua makes of a double-quoted literal that uses only plain characters and `\ddd` escapes. */
function luaBytes(literal: string): Buffer {
  expect(literal.startsWith('"') && literal.endsWith('"')).toBe(true);
  const bytes: number[] = [];
  const inner = literal.slice(1, -1);
  for (let i = 0; i < inner.length; i++) {
    if (inner[i] === '\\') {
      bytes.push(Number(inner.slice(i + 1, i + 4)));
      i += 3;
    } else {
      expect(inner[i]).not.toBe('"');
      bytes.push(inner.charCodeAt(i));
    }
  }
  return Buffer.from(bytes);
}

describe('bench wrkScript', () => {
  it('writes any string as a Lua literal of exactly its UTF-8 bytes', () => {
    for (const value of ['plain', 'a"b\\c', 'line\nbreak\r\t', 'Zoë ❤️ 1', '\\0123', '']) {
      expect(luaBytes(luaString(value))).toEqual(Buffer.from(value, 'utf8'));
    }
    // A digit after an escape stays a digit: escapes are always three digits long.
    expect(luaString('"1')).toBe('"\\0341"');
  });

  it('sets the method, every header and the body', () => {
    const script = wrkScript({
      url: 'http://127.0.0.1:1/v1/benji/connect-token',
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer x.y.z' },
      body: '{"mode":"connect"}',
    });
    expect(script).toBe(
      [
        'wrk.method = "POST"',
        'wrk.headers["content-type"] = "application/json"',
        'wrk.headers["authorization"] = "Bearer x.y.z"',
        'wrk.body = "{\\034mode\\034:\\034connect\\034}"',
        '',
      ].join('\n'),
    );
  });

  it('sends GET with no body when the call has none', () => {
    expect(wrkScript({ url: 'http://127.0.0.1:1/' })).toBe('wrk.method = "GET"\n');
  });
});
