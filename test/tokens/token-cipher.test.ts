import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTokenCipher } from '../../src/tokens/token-cipher.js';

const cipher = createTokenCipher(randomBytes(32));
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
      expect(cipher.decrypt(cipher.encrypt(plaintext))).toBe(plaintext);
    }
  });

  it('writes v1.<keyId>.<iv>.<tag>.<ciphertext> in base64url, with a fresh IV each time', () => {
    const first = cipher.encrypt('same');
    const second = cipher.encrypt('same');
    expect(first).toMatch(/^v1\.[\w-]{8}\.[\w-]{16}\.[\w-]{22}\.[\w-]+$/);
    expect(first).not.toBe(second);
    expect(first.split('.')[2]).not.toBe(second.split('.')[2]);
  });

  it('refuses a blob written under another key', () => {
    const other = createTokenCipher(randomBytes(32));
    const blob = other.encrypt('secret');
    expect(blob.split('.')[1]).not.toBe(cipher.encrypt('secret').split('.')[1]);
    expect(cipher.decrypt(blob)).toBeUndefined();
  });

  it('refuses a tampered blob', () => {
    const blob = cipher.encrypt('a session worth stealing');
    for (const part of [1, 2, 3, 4]) expect(cipher.decrypt(tamper(blob, part))).toBeUndefined();
    // Node's decoder ignores padding and the spare low bits of a last character: such variants
    // decode to the very same bytes, and the cipher must still refuse them.
    expect(cipher.decrypt(`${blob}=`)).toBeUndefined();
    const [version, keyId, iv, tag = '', ciphertext] = blob.split('.');
    const spareBitFlipped = tag.slice(0, -1) + base64url[base64url.indexOf(tag.at(-1) ?? '') ^ 1];
    expect(Buffer.from(spareBitFlipped, 'base64url')).toEqual(Buffer.from(tag, 'base64url'));
    expect(cipher.decrypt([version, keyId, iv, spareBitFlipped, ciphertext].join('.'))).toBeUndefined();
    expect(cipher.decrypt(blob.slice(0, -1))).toBeUndefined();
  });

  it('returns undefined, never throws, for malformed input', () => {
    for (const blob of ['', 'garbage', 'v1', 'v1....', 'v2.a.b.c.d', `${cipher.encrypt('x')}.extra`]) {
      expect(cipher.decrypt(blob)).toBeUndefined();
    }
  });

  it('insists on a 32-byte key', () => {
    expect(() => createTokenCipher(randomBytes(16))).toThrow(/32 bytes/);
    expect(() => createTokenCipher(randomBytes(33))).toThrow(/32 bytes/);
    expect(() => createTokenCipher(Buffer.alloc(0))).toThrow(/32 bytes/);
  });
});
