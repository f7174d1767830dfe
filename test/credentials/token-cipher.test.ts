import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTokenCipher } from '../../src/credentials/stores/token-cipher.js';

const key = randomBytes(32);
const cipher = createTokenCipher(key);
const name = 'bff:starship:session';
const base64url = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Changes one character of a blob's part (1 keyId, 2 iv, 3 tag, 4 ciphertext) to another valid one. */
function tamper(blob: string, part: number): string {
  const parts = blob.split('.');
  const text = parts[part] ?? '';
  parts[part] = (text[0] === 'A' ? 'B' : 'A') + text.slice(1);
  return parts.join('.');
}

describe('token cipher', () => {
  it('round-trips text, including empty and non-ASCII', () => {
    for (const plaintext of ['{"accessToken":"a.b.c"}', '', 'é ✓ 🚀']) {
      expect(cipher.decrypt(cipher.encrypt(plaintext, name), name)).toBe(plaintext);
    }
  });

  it('writes v2.<keyId>.<iv>.<tag>.<ciphertext> in base64url, with a fresh IV each time', () => {
    const first = cipher.encrypt('same', name);
    const second = cipher.encrypt('same', name);
    expect(first).toMatch(/^v2\.[\w-]{8}\.[\w-]{16}\.[\w-]{22}\.[\w-]+$/);
    expect(first).not.toBe(second);
    expect(first.split('.')[2]).not.toBe(second.split('.')[2]);
  });

  it('refuses a blob written under another key', () => {
    const other = createTokenCipher(randomBytes(32));
    const blob = other.encrypt('secret', name);
    expect(blob.split('.')[1]).not.toBe(cipher.encrypt('secret', name).split('.')[1]);
    expect(cipher.decrypt(blob, name)).toBeUndefined();
  });

  it('refuses a tampered blob', () => {
    const blob = cipher.encrypt('a session worth stealing', name);
    for (const part of [1, 2, 3, 4]) expect(cipher.decrypt(tamper(blob, part), name)).toBeUndefined();
    // Node's decoder ignores padding and the spare low bits of a last character: such variants
    // decode to the very same bytes, and the cipher must still refuse them.
    expect(cipher.decrypt(`${blob}=`, name)).toBeUndefined();
    const [version, keyId, iv, tag = '', ciphertext] = blob.split('.');
    const spareBitFlipped = tag.slice(0, -1) + base64url[base64url.indexOf(tag.at(-1) ?? '') ^ 1];
    expect(Buffer.from(spareBitFlipped, 'base64url')).toEqual(Buffer.from(tag, 'base64url'));
    expect(cipher.decrypt([version, keyId, iv, spareBitFlipped, ciphertext].join('.'), name)).toBeUndefined();
    expect(cipher.decrypt(blob.slice(0, -1), name)).toBeUndefined();
  });

  it('opens a blob only under the key name it was sealed for', () => {
    const blob = cipher.encrypt('{"accessToken":"a.b.c"}', name);
    for (const other of ['bff:starship:session:user-1', 'other:starship:session', 'bff:starship:session ', ''])
      expect(cipher.decrypt(blob, other)).toBeUndefined();
    expect(cipher.decrypt(blob, name)).toBe('{"accessToken":"a.b.c"}');
  });

  it('refuses a v1 blob (sealed without a key name), so an upgrade costs one login and nothing else', () => {
    // Sealed exactly as the v1 cipher did: the header alone was the associated data.
    const keyId = createHash('sha256').update(key).digest('base64url').slice(0, 8);
    const iv = randomBytes(12);
    const sealer = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
    sealer.setAAD(Buffer.from(`v1.${keyId}`));
    const ciphertext = Buffer.concat([sealer.update('{"accessToken":"old"}', 'utf8'), sealer.final()]);
    const v1 = ['v1', keyId, iv.toString('base64url'), sealer.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join(
      '.',
    );
    expect(cipher.decrypt(v1, name)).toBeUndefined();
    expect(cipher.decrypt(v1.replace(/^v1\./, 'v2.'), name)).toBeUndefined();
  });

  it('returns undefined, never throws, for malformed input', () => {
    for (const blob of ['', 'garbage', 'v1', 'v1....', 'v2.a.b.c.d', `${cipher.encrypt('x', name)}.extra`]) {
      expect(cipher.decrypt(blob, name)).toBeUndefined();
    }
  });

  it('insists on a 32-byte key', () => {
    expect(() => createTokenCipher(randomBytes(16))).toThrow(/32 bytes/);
    expect(() => createTokenCipher(randomBytes(33))).toThrow(/32 bytes/);
    expect(() => createTokenCipher(Buffer.alloc(0))).toThrow(/32 bytes/);
  });
});
