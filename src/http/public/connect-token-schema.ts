import { z } from 'zod';
import { benjiModeByNumber, benjiModeNumbers, benjiModes, type BenjiModeNumber } from '../../upstream/benji/benji-modes.js';

const fields = ['mode', 'displayName', 'amount', 'allowsEditing'] as const;

/**
 * Printable characters only. Refused: controls (Cc), format characters (Cf: bidi overrides and
 * isolates, zero-width space and joiners, word joiner, BOM, …), lone surrogates (Cs), private-use
 * (Co) and unassigned (Cn) code points, line and paragraph separators, and the other characters
 * Unicode says render as nothing (Default_Ignorable: the combining grapheme joiner, variation
 * selectors, Hangul fillers…) but the emoji-presentation selector right after a symbol (❤️). And
 * something must show: a letter, digit, punctuation or symbol other than the blank braille pattern.
 * The name is shown to the user in Benji's UI, where any of these can hide or reorder text.
 */
const hidden = /[\p{C}\p{Zl}\p{Zp}]|(?<!\p{So})\uFE0F|(?!\uFE0F)\p{Default_Ignorable_Code_Point}/u;
const shown = /(?!\u2800)[\p{L}\p{N}\p{P}\p{S}]/u;
export const isPrintableText = (text: string) => !hidden.test(text) && shown.test(text);

const modeNumberList = benjiModes.map((mode) => benjiModeNumbers[mode]) as [BenjiModeNumber, ...BenjiModeNumber[]];
const modes = `one of ${benjiModes.map((mode) => `"${mode}"`).join(', ')}, or their numbers ${modeNumberList.join(', ')}`;
const displayNameRule =
  'must be a string of 1–100 printable characters (letters, marks, digits, punctuation, symbols, spaces; no control, bidi, zero-width, invisible, private-use, unassigned or line-separator characters)';

/** Unknown keys are named back when they are short and plain; anything else could be anything. */
const unknownFields = (keys: readonly string[]) => {
  const named = keys.filter((key) => /^[A-Za-z0-9_.-]{1,40}$/.test(key)).map((key) => `"${key}"`);
  const which = named.length === keys.length ? ` ${named.join(', ')}` : '';
  return `unknown field${keys.length === 1 ? '' : 's'}${which}; the fields are ${fields.join(', ')}`;
};

/**
 * The body a frontend may send. Strict: unknown fields are refused, so nobody can smuggle in a
 * `user_external_id` or a partnership — those come from the verified token and the server config.
 * Every message says what is allowed. `maxTransferAmount` is the partner's bound, so a too-large
 * amount gets the same one message as any other wrong amount.
 */
export function connectTokenBodySchema({ maxTransferAmount = Number.MAX_SAFE_INTEGER }: { maxTransferAmount?: number | undefined } = {}) {
  const amountRule = `must be a whole number from 1 to ${maxTransferAmount}`;
  return z
    .strictObject(
      {
        mode: z
          .union([z.enum(benjiModes), z.literal(modeNumberList)], {
            error: (issue) => (issue.input === undefined ? `is required: ${modes}` : `must be ${modes}`),
          })
          .transform((mode) => (typeof mode === 'number' ? benjiModeByNumber[mode] : mode)),
        // Checked before trimming, so a control character at either end is refused, not trimmed away.
        displayName: z
          .string({ error: displayNameRule })
          .refine(isPrintableText, displayNameRule)
          .trim()
          .min(1, displayNameRule)
          .max(100, displayNameRule)
          .optional(),
        amount: z.number({ error: amountRule }).int(amountRule).positive(amountRule).max(maxTransferAmount, amountRule).optional(),
        allowsEditing: z.boolean({ error: 'must be true or false' }).optional(),
      },
      { error: (issue) => (issue.code === 'unrecognized_keys' ? unknownFields(issue.keys) : undefined) },
    )
    .superRefine((body, ctx) => {
      if (body.mode !== 'transfer') {
        for (const field of ['amount', 'allowsEditing'] as const) {
          if (body[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'is allowed only with mode transfer' });
        }
      } else if (body.allowsEditing !== undefined && body.amount === undefined) {
        ctx.addIssue({ code: 'custom', path: ['allowsEditing'], message: 'needs an amount to preset' });
      }
    });
}

/** The body with no partner bound, as the OpenAPI description shows it. */
export const connectTokenBody = connectTokenBodySchema();

export type ConnectTokenBody = z.output<typeof connectTokenBody>;

export const connectTokenResponse = z.object({
  token: z.string(),
  mode: z.enum(benjiModes),
  connectUrl: z.string().nullable(),
  hostedUrl: z.string().nullable(),
});

export type ConnectTokenResponse = z.output<typeof connectTokenResponse>;
