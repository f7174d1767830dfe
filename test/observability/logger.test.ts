import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTimestamp } from '../../src/observability/logger.js';

describe('isoTimestamp', () => {
  it('writes what toISOString writes, whatever order the clock is read in', () => {
    // Runs of nearby times (same second, next second, the clock stepping back) and far-apart ones.
    const times = fc.array(
      fc.oneof(fc.integer({ min: -62_000_000_000_000, max: 253_402_300_799_999 }), fc.integer({ min: 0, max: 3_000 })),
      {
        minLength: 1,
        maxLength: 50,
      },
    );
    fc.assert(
      fc.property(times, (values) => {
        let current = 0;
        const timestamp = isoTimestamp(() => current);
        for (const value of values) {
          current = value;
          expect(timestamp()).toBe(`,"time":"${new Date(value).toISOString()}"`);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
