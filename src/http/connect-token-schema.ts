import { z } from 'zod';
import { benjiModes } from '../config/env-schema.js';

const modeNumbers = { 1: 'connect', 3: 'transfer', 4: 'redeem' } as const;

/**
 * The body a frontend may send. Strict: unknown fields are refused, so nobody can smuggle in a
 * `user_external_id` or a partnership — those come from the verified token and the server config.
 */
export const connectTokenBody = z
  .strictObject({
    mode: z
      .union([z.enum(benjiModes), z.literal(1), z.literal(3), z.literal(4)])
      .transform((mode) => (typeof mode === 'number' ? modeNumbers[mode] : mode)),
    displayName: z.string().trim().min(1).max(100).optional(),
    amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    allowsEditing: z.boolean().optional(),
  })
  .superRefine((body, ctx) => {
    if (body.mode !== 'transfer') {
      for (const field of ['amount', 'allowsEditing'] as const) {
        if (body[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'is allowed only with mode transfer' });
      }
    } else if (body.allowsEditing !== undefined && body.amount === undefined) {
      ctx.addIssue({ code: 'custom', path: ['allowsEditing'], message: 'needs an amount to preset' });
    }
  });

export type ConnectTokenBody = z.output<typeof connectTokenBody>;

export const connectTokenResponse = z.object({
  token: z.string(),
  mode: z.enum(benjiModes),
  connectUrl: z.string().nullable(),
  hostedUrl: z.string().nullable(),
});

export type ConnectTokenResponse = z.output<typeof connectTokenResponse>;
