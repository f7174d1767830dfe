import { describe, expect, it } from 'vitest';
import { cpuSeconds } from '../../bench/support.js';

/**
 * The bench divides a target's CPU time, read from /proc, by the requests it served. A wrong field
 * or unit there would make every "CPU per request" in bench/RESULTS.md wrong while looking
 * plausible, so this checks the reading against Node's own count of this process's CPU.
 */
describe('bench cpuSeconds', () => {
  it('agrees with process.cpuUsage for this process, to within a few clock ticks', () => {
    const before = cpuSeconds(process.pid);
    const usageBefore = process.cpuUsage();
    // Burn CPU until Node itself has counted 300 ms of it (not a wall-clock wait: a busy machine only makes it take longer).
    let spent = 0;
    while (spent < 0.3) {
      for (let i = 0; i < 1e5; i++) Math.sqrt(i);
      const usage = process.cpuUsage(usageBefore);
      spent = (usage.user + usage.system) / 1e6;
    }
    const after = cpuSeconds(process.pid);
    const usage = process.cpuUsage(usageBefore);
    const counted = (usage.user + usage.system) / 1e6;

    expect(after.total - before.total).toBeGreaterThan(counted - 0.05);
    expect(after.total - before.total).toBeLessThan(counted + 0.05);
    // The loop ran on this thread; other threads only add to the total.
    expect(after.main - before.main).toBeGreaterThan(0.2);
    expect(after.main).toBeLessThanOrEqual(after.total);
  });

  it('reads NaN, not zero, for a process that is gone', () => {
    const gone = cpuSeconds(2 ** 30);
    expect(gone.total).toBeNaN();
    expect(gone.main).toBeNaN();
  });
});
