import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { Redis } from 'ioredis';
import jwt from 'jsonwebtoken';
import { pinoHttp } from 'pino-http';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import { z } from 'zod';
import { env, listen } from './common.js';

/**
 * `POST /v1/benji/connect-token` as a team writes it by hand from the popular libraries, each used
 * the way its README shows: helmet's defaults, pino-http logging every request to stdout (the
 * Authorization header redacted), jsonwebtoken, express-rate-limit with a rate-limit-redis store,
 * zod for the body and the reply, and the global fetch with a timeout. Configured like the
 * broker's bench config: the same JWT secret (no issuer or audience there, so none here), the same
 * per-user limit on the same Redis, the same fake Benji and the same body sent to it.
 */
const benjiUrl = env('BENJI_URL');
const apiKey = env('BENJI_API_KEY');
const partnershipId = env('BENJI_PARTNERSHIP_ID');
const jwtSecret = env('JWT_SECRET');
const perMinute = Number(env('RATE_LIMIT_PER_MINUTE'));
const redis = new Redis(env('REDIS_URL'));

const modeNumbers = { connect: 1, transfer: 3, redeem: 4 } as const;
const modeByNumber = { 1: 'connect', 3: 'transfer', 4: 'redeem' } as const;

const connectBody = z
  .strictObject({
    // The broker takes a mode by name or by Benji's number.
    mode: z.union([z.enum(['connect', 'transfer', 'redeem']), z.literal([1, 3, 4]).transform((n) => modeByNumber[n])]),
    displayName: z.string().trim().min(1).max(100).optional(),
    amount: z.number().int().positive().optional(),
    allowsEditing: z.boolean().optional(),
  })
  .refine((body) => body.mode === 'transfer' || (body.amount === undefined && body.allowsEditing === undefined), {
    message: 'amount and allowsEditing are allowed only with mode transfer',
  });

const benjiReply = z.object({ data: z.object({ token: z.string().min(1), connect_url: z.string().nullish() }) });

/** The verified user's id, from the token's `sub`, for the limiter and the handler. */
const authenticate: RequestHandler = (req, res, next) => {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (token === undefined) return void res.status(401).json({ error: 'unauthenticated' });
  try {
    const payload = jwt.verify(token, jwtSecret, { algorithms: ['HS256'] });
    if (typeof payload === 'string' || payload.sub === undefined) return void res.status(401).json({ error: 'unauthenticated' });
    res.locals.userId = payload.sub;
    next();
  } catch {
    res.status(401).json({ error: 'unauthenticated' });
  }
};

const limiter = rateLimit({
  windowMs: 60 * 1000,
  limit: perMinute,
  standardHeaders: 'draft-8',
  legacyHeaders: false,
  keyGenerator: (_req, res) => String(res.locals.userId),
  store: new RedisStore({
    sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
    prefix: 'bench-handwritten:rl:',
  }),
});

const app = express();
app.use(helmet());
app.use(pinoHttp({ redact: ['req.headers.authorization'] }));
app.use(express.json());

app.post('/v1/benji/connect-token', authenticate, limiter, async (req, res) => {
  const parsed = connectBody.safeParse(req.body);
  if (!parsed.success) return void res.status(400).json({ error: 'invalid_request', issues: parsed.error.issues });
  const body = parsed.data;

  const upstream = await fetch(`${benjiUrl}/auth/connect`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify({
      partnership_id: partnershipId,
      mode: modeNumbers[body.mode],
      user_external_id: res.locals.userId,
      ...(body.displayName !== undefined && { display_name: body.displayName }),
      ...(body.amount !== undefined && {
        custom_attributes: { actions: [{ mode: modeNumbers.transfer, amount: body.amount, allows_editing: body.allowsEditing ?? true }] },
      }),
    }),
    signal: AbortSignal.timeout(10_000),
  });
  const reply = benjiReply.safeParse(await upstream.json().catch(() => undefined));
  if (!upstream.ok || !reply.success) {
    req.log.warn({ upstreamStatus: upstream.status }, 'benji connect failed');
    return void res.status(502).json({ error: 'upstream_error' });
  }

  const { token, connect_url: connectUrl } = reply.data.data;
  let hostedUrl: string | null = null;
  if (connectUrl) {
    const url = new URL(connectUrl);
    url.searchParams.set('connect_token', token);
    hostedUrl = url.href;
  }
  res.set('cache-control', 'no-store').json({ token, mode: body.mode, connectUrl: connectUrl ?? null, hostedUrl });
});

// Express 5 sends rejected promises here; the details stay in the log.
const onError: ErrorRequestHandler = (error, req, res, _next) => {
  req.log.error({ err: error }, 'request failed');
  res.status(500).json({ error: 'internal' });
};
app.use(onError);

listen(app);
