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
 * Trimming runs once the stream is `slack` entries over the cap, by MINID up to that floor, and
 * looks at no more than `batch` entries per append: while a group holds the floor at the stream's
 * head (a delivery backlog), an append costs what it always costs, and once the floor moves the
 * stream shrinks back by up to `batch` entries per append.
 */
const appendScript = `
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('xadd', KEYS[2], '*', 'provider', ARGV[5], 'eventId', ARGV[6], 'type', ARGV[7], 'receivedAt', ARGV[8], 'body', ARGV[9])
local maxlen = tonumber(ARGV[2])
local len = redis.call('xlen', KEYS[2])
if len <= maxlen + tonumber(ARGV[3]) then return 1 end
local function parse(id) local ms, seq = string.match(id, '^(%d+)-(%d+)$'); return tonumber(ms), tonumber(seq) end
local function lower(a, b)
  local am, as = parse(a); local bm, bs = parse(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local floor = false
for _, group in ipairs(redis.call('xinfo', 'groups', KEYS[2])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local summary = redis.call('xpending', KEYS[2], info['name'])
  if summary[1] > 0 and (not floor or lower(summary[2], floor)) then floor = summary[2] end
  local unread = redis.call('xrange', KEYS[2], '(' .. info['last-delivered-id'], '+', 'COUNT', 1)
  if #unread > 0 and (not floor or lower(unread[1][1], floor)) then floor = unread[1][1] end
end
local head = redis.call('xrange', KEYS[2], '-', '+', 'COUNT', 1)
if floor and not lower(head[1][1], floor) then return 1 end
local cut = redis.call('xrange', KEYS[2], '-', '+', 'COUNT', math.min(len - maxlen + 1, tonumber(ARGV[4])))
local threshold = cut[#cut][1]
if floor and lower(floor, threshold) then threshold = floor end
redis.call('xtrim', KEYS[2], 'MINID', threshold)
return 1`;

// Another attempt at one entry: claimed (counted) and its delivery count read, in one step; only
// while it is still ours (another replica may have taken it over meanwhile).
const reclaimScript = `
local owner = redis.call('xpending', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #owner == 0 or owner[1][2] ~= ARGV[2] then return false end
local entries = redis.call('xclaim', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3])
if #entries == 0 or not entries[1] then return false end
local pending = redis.call('xpending', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 then return false end
return {entries[1][1], entries[1][2], pending[1][4]}`;

// Entries idle for ARGV[3] ms under any consumer, from cursor ARGV[5]: claimed for ARGV[2], with
// their delivery counts, and the cursor to go on from.
const adoptScript = `
local claimed = redis.call('xautoclaim', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[5], 'COUNT', ARGV[4])
local out = {claimed[1]}
for _, entry in ipairs(claimed[2]) do
  if entry and entry[1] then
    local pending = redis.call('xpending', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    if #pending > 0 then table.insert(out, {entry[1], entry[2], pending[1][4]}) end
  end
end
return out`;

// Touches the entries still ours (idle time reset, count unchanged); those taken over stay taken.
const keepAliveScript = `
for i = 3, #ARGV do
  local owner = redis.call('xpending', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #owner > 0 and owner[1][2] == ARGV[2] then redis.call('xclaim', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID') end
end
return 1`;

const deadLetterScript = `
redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
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
/** Dead letters kept (approximately): an endpoint refusing everything must not fill Redis. */
const deadLettersMaxLen = 100_000;
/** The most entries one append looks at (and trims). */
const trimBatch = 200;

type Fields = string[];

function toEvent(entryId: string, fields: Fields, attempts: number): QueuedEvent {
  // Names sit at even positions: a value that happens to equal a field's name is not a name.
  const get = (name: string) => {
    for (let i = 0; i < fields.length - 1; i += 2) if (fields[i] === name) return fields[i + 1] ?? '';
    return '';
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
  let adoptCursor = '0-0';

  /** A stream or group that vanished (a Redis restarted without persistence): made again at the next pass. */
  async function inGroup<T>(command: () => Promise<T>): Promise<T> {
    await ensureGroup();
    try {
      return await command();
    } catch (error) {
      if ((error as Error).message.includes('NOGROUP')) groupReady = undefined;
      throw error;
    }
  }

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
        trimBatch,
        event.provider,
        event.eventId,
        event.type,
        event.receivedAt,
        event.body,
      );
      return stored === 1 ? 'stored' : 'duplicate';
    },

    async readNew(consumer, count, blockMs) {
      const reply = (await inGroup(() =>
        workerRedis.xreadgroup('GROUP', deliveryGroup, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', stream, '>'),
      )) as [string, [string, Fields][]][] | null;
      return (reply?.[0]?.[1] ?? []).map(([id, fields]) => toEvent(id, fields, 1));
    },

    async reclaim(consumer, entryId) {
      const reply = (await inGroup(() => workerRedis.eval(reclaimScript, 1, stream, deliveryGroup, consumer, entryId))) as
        [string, Fields, number] | null;
      return reply === null ? undefined : toEvent(reply[0], reply[1], reply[2]);
    },

    async keepAlive(consumer, entryIds) {
      if (entryIds.length === 0) return;
      await inGroup(() => workerRedis.eval(keepAliveScript, 1, stream, deliveryGroup, consumer, ...entryIds));
    },

    async adoptStale(consumer, minIdleMs, count) {
      // XAUTOCLAIM looks at a bounded number of pending entries per call: the cursor walks on, so
      // entries behind many that are still held are reached too.
      const [cursor, ...claimed] = (await inGroup(() =>
        workerRedis.eval(adoptScript, 1, stream, deliveryGroup, consumer, minIdleMs, count, adoptCursor),
      )) as [string, ...[string, Fields, number][]];
      adoptCursor = cursor;
      return claimed.map(([id, fields, attempts]) => toEvent(id, fields, attempts));
    },

    async ack(entryId) {
      await workerRedis.xack(stream, deliveryGroup, entryId);
    },

    async deadLetter(event, lastError) {
      await workerRedis.eval(
        deadLetterScript,
        2,
        stream,
        dead,
        deliveryGroup,
        event.entryId,
        deadLettersMaxLen,
        ...deadFields(event, lastError),
      );
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
