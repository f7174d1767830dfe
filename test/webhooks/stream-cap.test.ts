import { afterAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisWebhookQueue } from '../../src/webhooks/redis-webhook-queue.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';

/**
 * The stream's cap against a real Redis: trimmed near WEBHOOK_STREAM_MAXLEN, but never past an
 * entry a consumer group still needs (handed out and unacknowledged, or not read yet).
 */
const redis = inspectRedis();
const client = new Redis(testRedisUrl);
const prefix = uniquePrefix();
afterAll(async () => {
  await deleteKeys(redis, prefix);
  await Promise.all([redis.quit(), client.quit()]);
});

const event = (i: number) => ({
  provider: 'starship' as const,
  eventId: `evt_${i}`,
  type: 'order.created',
  receivedAt: new Date().toISOString(),
  body: JSON.stringify({ id: `evt_${i}` }),
});

it('keeps every entry the delivery group has not acknowledged, and trims the rest to the cap', async () => {
  const queue = createRedisWebhookQueue({ redis: client, keyPrefix: prefix, maxLen: 1_000 });
  const stream = `${prefix}webhooks`;
  // The group exists (a worker started) and takes the first 50, which stay unacknowledged.
  const taken = await (async () => {
    await queue.append(event(0));
    return queue.readNew('worker-a', 50, 10);
  })();
  expect(taken).toHaveLength(1);
  for (let i = 1; i < 1_500; i++) await queue.append(event(i));
  // Nothing acknowledged: nothing may go, cap or not.
  expect(await redis.xlen(stream)).toBe(1_500);

  // All but the first read and acknowledged; the first stays pending.
  const rest = await queue.readNew('worker-a', 2_000, 10);
  for (const entry of rest) await queue.ack(entry.entryId);
  for (let i = 1_500; i < 1_700; i++) await queue.append(event(i));
  const [first] = await redis.xrange(stream, '-', '+', 'COUNT', 1);
  expect(first?.[0], 'the pending entry is kept').toBe(taken[0]?.entryId);
  // The floor is the pending entry, so nothing after it could go either.
  expect(await redis.xlen(stream)).toBe(1_700);

  await queue.ack(taken[0]?.entryId ?? '');
  for (let i = 1_700; i < 1_800; i++) await queue.append(event(i));
  const length = await redis.xlen(stream);
  expect(length).toBeGreaterThanOrEqual(1_000);
  expect(length).toBeLessThanOrEqual(1_000 + 101);
  // The 300 appended since the group last read count as pending: not delivered yet.
  expect(await queue.stats(Date.now())).toMatchObject({ stored: length, pending: 300, dead: 0 });
});
