import { z } from 'zod';
import { isPrintableText } from './connect-token-schema.js';

/** `POST /v1/benji/exchange`: the token Benji's SDK handed the frontend after Connect (strict, like the connect-token body). */
const exchangeTokenRule = 'must be the exchange token Benji’s SDK handed over: 1–4096 printable characters';
export const exchangeBody = z.strictObject(
  {
    exchangeToken: z
      .string({ error: exchangeTokenRule })
      .min(1, exchangeTokenRule)
      .max(4096, exchangeTokenRule)
      .refine(isPrintableText, exchangeTokenRule),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `only exchangeToken is accepted, not ${issue.keys.join(', ')}` : undefined) },
);

/** What the public door says of a user's link: whether there is one and to whom, never a token. */
export const linkStatusBody = z.union([
  z.object({ linked: z.literal(false) }),
  z.object({
    linked: z.literal(true),
    benjiUserId: z.string().meta({ description: 'The Benji user id the account is linked to' }),
    linkedAt: z.iso.datetime().meta({ description: 'When the user linked (the exchange)' }),
  }),
]);
export type LinkStatusBody = z.input<typeof linkStatusBody>;

export const linkExamples = {
  exchange: { exchangeToken: 'f3b1c2d4-8a9e-4c1f-9b2a-6d5e4f3a2b1c' },
  linked: { linked: true, benjiUserId: '1001', linkedAt: '2026-12-02T09:30:00.000Z' },
  notLinked: { linked: false },
};
