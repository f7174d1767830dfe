import { Writable } from 'node:stream';
import { watchLogs } from './secrets.js';

/** Collects the broker's JSON log lines so tests can assert what was (and was not) logged. */
export interface LogCapture {
  stream: Writable;
  readonly text: () => string;
  readonly entries: () => Array<Record<string, unknown>>;
}

export function captureLogs(): LogCapture {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const text = () => chunks.join('');
  watchLogs(text);
  return {
    stream,
    text,
    entries: () =>
      text()
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
