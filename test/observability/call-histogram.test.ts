import { Histogram, Registry } from 'prom-client';
import { expect, it } from 'vitest';
import { CallHistogram } from '../../src/observability/call-histogram.js';

const labelNames = ['door', 'route', 'status'];
const buckets = [0.005, 0.01, 0.5, 1];

/** The same observations in prom-client's Histogram and in ours, each in a registry of its own. */
function both() {
  const [theirs, ours] = [new Registry(), new Registry()];
  const reference = new Histogram({ name: 'calls_seconds', help: 'Calls.', labelNames, buckets, registers: [theirs] });
  const subject = new CallHistogram({ name: 'calls_seconds', help: 'Calls.', labelNames, buckets, registers: [ours] });
  const observe = (values: string[], seconds: number) => {
    reference.observe(Object.fromEntries(labelNames.map((name, i) => [name, values[i] ?? ''])), seconds);
    subject.record(values, seconds);
  };
  return { theirs, ours, observe, reference, subject };
}

it('exposes exactly what prom-client’s Histogram exposes for the same observations', async () => {
  const { theirs, ours, observe } = both();
  // On a bound, between bounds, below the first, above the last, and zero; three series, one label value with quotes.
  for (const seconds of [0, 0.001, 0.005, 0.0051, 0.01, 0.3, 0.5, 1, 7]) observe(['internal', '/v1/starship/{path}', '200'], seconds);
  observe(['public', '/v1/benji/connect-token', '429'], 0.02);
  observe(['public', 'say "hi"\\', '404'], 2);
  expect(await ours.metrics()).toBe(await theirs.metrics());
  expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  expect(await ours.metrics()).toContain('calls_seconds_bucket{le="0.005",door="internal",route="/v1/starship/{path}",status="200"} 3');
});

it('starts again from nothing when the registry is reset, and ignores a value that is not a number', async () => {
  const { theirs, ours, observe, subject } = both();
  observe(['internal', '/x', '200'], 0.2);
  ours.resetMetrics();
  theirs.resetMetrics();
  subject.record(['internal', '/x', '200'], Number.NaN);
  expect(await ours.metrics()).toBe(await theirs.metrics());
  observe(['internal', '/x', '500'], 0.2);
  expect(await ours.metrics()).toBe(await theirs.metrics());
});

it('refuses prom-client’s own writers, whose observations it would never expose', () => {
  const { subject } = both();
  expect(() => subject.observe({ door: 'internal' }, 1)).toThrow(/use record\(\)/);
  expect(() => subject.labels('internal', '/x', '200')).toThrow(/use record\(\)/);
});
