import express from 'express';
import { Pool } from 'undici';
import { env, listen } from './common.js';

/**
 * The public door with nothing in front of it: Express 5 parses the body and calls the (fake) Benji
 * `POST /auth/connect` with the API key — no caller auth, no validation, no rate limit, no logs.
 */
const apiKey = env('BENJI_API_KEY');
const partnershipId = env('BENJI_PARTNERSHIP_ID');
const pool = new Pool(env('BENJI_URL'));
const modes: Record<string, number> = { connect: 1, transfer: 3, redeem: 4 };

const app = express();
app.post('/v1/benji/connect-token', express.json(), async (req, res) => {
  const mode = modes[String((req.body as { mode?: unknown } | undefined)?.mode)] ?? 1;
  const upstream = await pool.request({
    method: 'POST',
    path: '/auth/connect',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify({ partnership_id: partnershipId, mode }),
  });
  const reply = (await upstream.body.json()) as { data?: { token?: string; connect_url?: string } };
  if (upstream.statusCode !== 200) return void res.status(502).json({ error: 'upstream_error' });
  res.json({ token: reply.data?.token, connectUrl: reply.data?.connect_url });
});
listen(app);
