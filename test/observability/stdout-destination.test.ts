import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createStdoutDestination } from '../../src/observability/stdout-destination.js';
import { until } from '../support/until.js';

/** A stdout whose reader can stall: writes are accepted into its buffer but not taken until released. */
function stallingStdout() {
  const taken: string[] = [];
  let stalled = true;
  let held: Array<() => void> = [];
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, done) {
      const take = () => {
        taken.push(chunk.toString());
        done();
      };
      if (stalled) held.push(take);
      else take();
    },
  });
  return {
    stream,
    text: () => taken.join(''),
    release() {
      stalled = false;
      for (const take of held.splice(0)) take();
      held = [];
    },
  };
}

describe('the stdout destination', () => {
  it('keeps a bounded queue while stdout is blocked, counts what it dropped, and writes in order once it drains', async () => {
    const stdout = stallingStdout();
    const destination = createStdoutDestination({ stream: stdout.stream, minLength: 100, maxPendingLength: 2_000 });
    const line = (i: number) => `${JSON.stringify({ i, pad: 'x'.repeat(80) })}\n`;
    for (let i = 0; i < 200; i++) destination.write(line(i));
    expect(stdout.text()).toBe('');
    stdout.release();
    await new Promise<void>((resolve) => destination.flush(() => resolve()));
    await until(() => stdout.text().includes('"dropped"'), 'the dropped-lines notice');

    const written = stdout
      .text()
      .trimEnd()
      .split('\n')
      .map((text) => JSON.parse(text) as { i?: number; dropped?: number });
    const numbers = written.flatMap((entry) => (entry.i === undefined ? [] : [entry.i]));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(numbers[0]).toBe(0);
    const notice = written.find((entry) => entry.dropped !== undefined);
    // Every line is either written or counted as dropped.
    expect(numbers.length + (notice?.dropped ?? 0)).toBe(200);
    expect(notice?.dropped).toBeGreaterThan(100);

    // Logging goes on normally afterwards.
    destination.write(line(200));
    await new Promise<void>((resolve) => destination.flush(() => resolve()));
    expect(stdout.text()).toContain(line(200));
  });

  it('stops quietly once stdout is closed (EPIPE)', async () => {
    const stdout = stallingStdout();
    const destination = createStdoutDestination({ stream: stdout.stream, minLength: 10 });
    stdout.stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    for (let i = 0; i < 10; i++) destination.write('{"after":"close"}\n');
    await new Promise<void>((resolve) => destination.flush(() => resolve()));
    stdout.release();
    expect(stdout.text()).toBe('');
  });
});
