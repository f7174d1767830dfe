import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { env, listen, starshipAccessToken } from './common.js';

/**
 * What teams use today: Express and http-proxy-middleware v3 with its defaults, plus only what a
 * Starship proxy needs (the target, the prefix rewrite, the fixed token).
 */
const token = await starshipAccessToken();

const app = express();
app.use(
  createProxyMiddleware({
    target: env('STARSHIP_URL'),
    pathRewrite: { '^/v1/starship': '' },
    headers: { authorization: `Bearer ${token}` },
  }),
);
listen(app);
