import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Seals the Starship session before it leaves the process, so Redis never holds tokens in plaintext.
 * A blob is sealed for the name it is stored under (a Redis key) and opens under that name only, so
 * a blob copied to another key or prefix is refused.
 */
export interface TokenCipher {
  encrypt(plaintext: string, keyName: string): string;
  /** The plaintext, or undefined for anything it cannot open (other key or name, tampered, malformed); never throws. */
  decrypt(blob: string, keyName: string): string | undefined;
}

// v2 binds the key name into the associated data; v1 blobs (no name) no longer open.
const version = 'v2';
const algorithm = 'aes-256-gcm';
const ivBytes = 12;
const tagBytes = 16;

/**
 * AES-256-GCM with a fresh random IV per blob: `v2.<keyId>.<iv>.<tag>.<ciphertext>`, all base64url.
 * keyId names the key (a hash prefix, not the key) so a blob sealed under another key, e.g. after a
 * rotation, is refused without trying. Version, keyId and the key name are authenticated too.
 */
export function createTokenCipher(key: Buffer): TokenCipher {
  if (key.length !== 32) throw new Error(`token cipher key must be 32 bytes, got ${key.length}`);
  const keyId = createHash('sha256').update(key).digest('base64url').slice(0, 8);
  const header = `${version}.${keyId}`;
  // The header holds no NUL, so header and name cannot be shifted into each other.
  const associatedData = (keyName: string) => Buffer.from(`${header}\0${keyName}`, 'utf8');

  return {
    encrypt(plaintext, keyName) {
      const iv = randomBytes(ivBytes);
      const cipher = createCipheriv(algorithm, key, iv, { authTagLength: tagBytes });
      cipher.setAAD(associatedData(keyName));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [header, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
    },

    decrypt(blob, keyName) {
      const parts = blob.split('.');
      if (parts.length !== 5 || `${parts[0]}.${parts[1]}` !== header) return undefined;
      const iv = decode(parts[2]);
      const tag = decode(parts[3]);
      const ciphertext = decode(parts[4]);
      if (iv?.length !== ivBytes || tag?.length !== tagBytes || ciphertext === undefined) return undefined;
      try {
        const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: tagBytes });
        decipher.setAAD(associatedData(keyName));
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
