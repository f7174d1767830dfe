import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** Seals the Starship session before it leaves the process, so Redis never holds tokens in plaintext. */
export interface TokenCipher {
  encrypt(plaintext: string): string;
  /** The plaintext, or undefined for anything it cannot open (other key, tampered, malformed); never throws. */
  decrypt(blob: string): string | undefined;
}

const version = 'v1';
const algorithm = 'aes-256-gcm';
const ivBytes = 12;
const tagBytes = 16;

/**
 * AES-256-GCM with a fresh random IV per blob: `v1.<keyId>.<iv>.<tag>.<ciphertext>`, all base64url.
 * keyId names the key (a hash prefix, not the key) so a blob sealed under another key, e.g. after a
 * rotation, is refused without trying; version and keyId are authenticated too.
 */
export function createTokenCipher(key: Buffer): TokenCipher {
  if (key.length !== 32) throw new Error(`token cipher key must be 32 bytes, got ${key.length}`);
  const keyId = createHash('sha256').update(key).digest('base64url').slice(0, 8);
  const header = `${version}.${keyId}`;

  return {
    encrypt(plaintext) {
      const iv = randomBytes(ivBytes);
      const cipher = createCipheriv(algorithm, key, iv, { authTagLength: tagBytes });
      cipher.setAAD(Buffer.from(header));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [header, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
    },

    decrypt(blob) {
      const parts = blob.split('.');
      if (parts.length !== 5 || `${parts[0]}.${parts[1]}` !== header) return undefined;
      const iv = decode(parts[2]);
      const tag = decode(parts[3]);
      const ciphertext = decode(parts[4]);
      if (iv?.length !== ivBytes || tag?.length !== tagBytes || ciphertext === undefined) return undefined;
      try {
        const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: tagBytes });
        decipher.setAAD(Buffer.from(header));
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
      } catch {
        return undefined;
      }
    },
  };
}

/** Strict base64url: Node's decoder ignores stray characters and spare bits, so an altered blob could still open. */
function decode(text: string | undefined): Buffer | undefined {
  if (text === undefined) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}
