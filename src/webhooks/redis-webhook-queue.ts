import { hash } from 'node:crypto';
import type { RedisClient } from '../redis.js';
import { firstConnection } from '../redis.js';
import type { WebhookProvider } from './signatures.js';
import { deliveryGroup, seenForS, type QueuedEvent, type QueueStats, type StoredEvent, type WebhookQueue } from './webhook-queue.js';

export interface RedisWebhookQueueOptions {
  /** The shared, fail-fast connection: receipts answer 503 at once when Redis is down. */
  redis: RedisClient;
  /** A connection of the delivery worker's own: its reads block for a while. */
  workerRedis?: RedisClient;
  keyPrefix: string;
  /** The stream's approximate cap (WEBHOOK_STREAM_MAXLEN). */
  maxLen: number;
}

/*
 * Marking the event seen and appending it are one script, so no crash can leave an event marked
 * seen but not stored. The cap is kept here too, but never below what a consumer group still
 * needs: the oldest entry any group has been handed and not acknowledged, or has not read yet.
 * Trimming runs once the stream is `slack` entries over the cap, by MINID up to that floor.
 */
const appendScript = `
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('xadd', KEYS[2], '*', 'provider', ARGV[4], 'eventId', ARGV[5], 'type', ARGV[6], 'receivedAt', ARGV[7], 'body', ARGV[8])
local maxlen = tonumber(ARGV[2])
local len = redis.call('xlen', KEYS[2])
if len <= maxlen + tonumber(ARGV[3]) then return 1 end
local function parse(id) local ms, seq = string.match(id, '^(%d+)-(%d+)$'); return tonumber(ms), tonumber(seq) end
local function lower(a, b)
  local am, as = parse(a); local bm, bs = parse(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local cut = redis.call('xrange', KEYS[2], '-', '+', 'COUNT', len - maxlen + 1)
local floor = cut[#cut][1]
for _, group in ipairs(redis.call('xinfo', 'groups', KEYS[2])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local summary = redis.call('xpending', KEYS[2], info['name'])
  if summary[1] > 0 and lower(summary[2], floor) then floor = summary[2] end
  local delivered = info['last-delivered-id']
  if lower(delivered, floor) then floor = delivered end
end
redis.call('xtrim', KEYS[2], 'MINID', floor)
return 1`;

// Another attempt at one entry: claimed (counted) and its delivery count read, in one step.
const reclaimScript = `
local entries = redis.call('xclaim', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3])
if #entries == 0 or not entries[1] then return false end
local pending = redis.call('xpending', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 then return false end
return {entries[1][1], entries[1][2], pending[1][4]}`;

// Entries idle for ARGV[3] ms under any consumer: claimed for ARGV[2], with their delivery counts.
const adoptScript = `
local claimed = redis.call('xautoclaim', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local out = {}
for _, entry in ipairs(claimed[2]) do
  if entry and entry[1] then
    local pending = redis.call('xpending', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    if #pending > 0 then table.insert(out, {entry[1], entry[2], pending[1][4]}) end
  end
end
return out`;

const deadLetterScript = `
redis.call('xadd', KEYS[2], '*', unpack(ARGV, 3))
redis.call('xack', KEYS[1], ARGV[1], ARGV[2])
return 1`;

const retryDeadScript = `
local entries = redis.call('xrange', KEYS[2], ARGV[1], ARGV[1])
if #entries == 0 then return 0 end
local fields = entries[1][2]
local keep = {}
for i = 1, #fields, 2 do
  local name = fields[i]
  if name == 'provider' or name == 'eventId' or name == 'type' or name == 'receivedAt' or name == 'body' then
    table.insert(keep, name); table.insert(keep, fields[i + 1])
  end
end
redis.call('xadd', KEYS[1], '*', unpack(keep))
redis.call('xdel', KEYS[2], ARGV[1])
return 1`;

const statsScript = `
local stored = redis.call('xlen', KEYS[1])
local dead = redis.call('xlen', KEYS[2])
local ok, groups = pcall(redis.call, 'xinfo', 'groups', KEYS[1])
local pending, oldest = 0, false
if ok then
  for _, group in ipairs(groups) do
    local info = {}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    if info['name'] == ARGV[1] then
      local summary = redis.call('xpending', KEYS[1], ARGV[1])
      pending = summary[1]
      if summary[1] > 0 then oldest = summary[2] end
      local unread = redis.call('xrange', KEYS[1], '(' .. info['last-delivered-id'], '+', 'COUNT', 1)
      if #unread > 0 then
        if not oldest then oldest = unread[1][1] end
        local lag = info['lag']
        if type(lag) == 'number' then pending = pending + lag
        else pending = pending + #redis.call('xrange', KEYS[1], '(' .. info['last-delivered-id'], '+') end
      end
    end
  end
end
return {stored, dead, pending, oldest}`;

/** How long a receipt waits for the first connection at start (the Redis connect timeout). */
const firstConnectionWaitMs = 2_000;

/** How far past the cap the stream may grow before a trim: trims come in batches, not on every event. */
const trimSlack = 100;

type Fields = string[];

function toEvent(entryId: string, fields: Fields, attempts: number): QueuedEvent {
  const get = (name: string) => {
    const at = fields.indexOf(name);
    return at === -1 || at % 2 === 1 ? '' : (fields[at + 1] ?? '');
  };
  return {
    entryId,
    attempts,
    provider: get('provider') as WebhookProvider,
    eventId: get('eventId'),
    type: get('type'),
    receivedAt: get('receivedAt'),
    body: get('body'),
  };
}

export function createRedisWebhookQueue({ redis, workerRedis = redis, keyPrefix, maxLen }: RedisWebhookQueueOptions): WebhookQueue {
  const stream = `${keyPrefix}webhooks`;
  const dead = `${keyPrefix}webhooks:dead`;
  // Event ids are the provider's: hashed, so no key grows with what a provider sends.
  const seen = (event: StoredEvent) => `${keyPrefix}webhooks:seen:${event.provider}:${hash('sha256', event.eventId, 'hex')}`;
  let groupReady: Promise<void> | undefined;

  /** The group starts at the stream's beginning: events stored before the first worker started are delivered too. */
  function ensureGroup(): Promise<void> {
    groupReady ??= workerRedis.xgroup('CREATE', stream, deliveryGroup, '0', 'MKSTREAM').then(
      () => undefined,
      (error: Error) => {
        if (!error.message.includes('BUSYGROUP')) {
          groupReady = undefined;
          throw error;
        }
      },
    );
    return groupReady;
  }

  return {
    async append(event) {
      await firstConnection(redis, firstConnectionWaitMs);
      const stored = await redis.eval(
        appendScript,
        2,
        seen(event),
        stream,
        seenForS,
        maxLen,
        trimSlack,
        event.provider,
        event.eventId,
        event.type,
        event.receivedAt,
        event.body,
      );
      return stored === 1 ? 'stored' : 'duplicate';
    },

    async readNew(consumer, count, blockMs) {
      await ensureGroup();
      const reply = (await workerRedis.xreadgroup(
        'GROUP',
        deliveryGroup,
        consumer,
        'COUNT',
        count,
        'BLOCK',
        blockMs,
        'STREAMS',
        stream,
        '>',
      )) as [string, [string, Fields][]][] | null;
      return (reply?.[0]?.[1] ?? []).map(([id, fields]) => toEvent(id, fields, 1));
    },

    async reclaim(consumer, entryId) {
      const reply = (await workerRedis.eval(reclaimScript, 1, stream, deliveryGroup, consumer, entryId)) as [string, Fields, number] | null;
      return reply === null ? undefined : toEvent(reply[0], reply[1], reply[2]);
    },

    async keepAlive(consumer, entryIds) {
      if (entryIds.length === 0) return;
      await workerRedis.xclaim(stream, deliveryGroup, consumer, 0, ...entryIds, 'JUSTID');
    },

    async adoptStale(consumer, minIdleMs, count) {
      await ensureGroup();
      const reply = (await workerRedis.eval(adoptScript, 1, stream, deliveryGroup, consumer, minIdleMs, count)) as [
        string,
        Fields,
        number,
      ][];
      return reply.map(([id, fields, attempts]) => toEvent(id, fields, attempts));
    },

    async ack(entryId) {
      await workerRedis.xack(stream, deliveryGroup, entryId);
    },

    async deadLetter(event, lastError) {
      await workerRedis.eval(deadLetterScript, 2, stream, dead, deliveryGroup, event.entryId, ...deadFields(event, lastError));
    },

    async retryDead(deadId) {
      return (await redis.eval(retryDeadScript, 2, stream, dead, deadId)) === 1;
    },

    async stats(nowMs): Promise<QueueStats> {
      const [stored, deadCount, pending, oldest] = (await redis.eval(statsScript, 2, stream, dead, deliveryGroup)) as [
        number,
        number,
        number,
        string | null,
      ];
      const oldestMs = oldest === null ? undefined : Number(oldest.split('-')[0]);
      return {
        stored,
        pending,
        dead: deadCount,
        oldestPendingAgeS: oldestMs === undefined ? null : Math.max(0, Math.round((nowMs - oldestMs) / 1000)),
      };
    },
  };
}

function deadFields(event: QueuedEvent, lastError: string): string[] {
  return [
    ...['provider', event.provider, 'eventId', event.eventId, 'type', event.type, 'receivedAt', event.receivedAt, 'body', event.body],
    ...['entryId', event.entryId, 'attempts', String(event.attempts), 'error', lastError],
  ];
}
