import { writeSync } from 'node:fs';
import type { Writable } from 'node:stream';

export interface StdoutDestinationOptions {
  /** Where lines go: the process's stdout (main.ts and the demo pass it), or a test's stream. */
  stream: Writable & { readonly fd?: number };
  /** Registers the last-chance write at process exit (main.ts: `process.once('exit', …)`). */
  onExit?: (write: () => void) => void;
  /** Lines are gathered until this many characters, then written in one go. */
  minLength?: number;
  /** …or until this much time has passed. */
  flushIntervalMs?: number;
  /** While the stream is blocked, lines past this many characters are dropped (and counted). */
  maxPendingLength?: number;
}

/** A pino destination: `write` per line, `flush` on demand. */
export interface StdoutDestination {
  write(line: string): void;
  flush(callback?: (error?: Error) => void): void;
}

/**
 * JSON lines to stdout, batched, in a way that can never keep the process from exiting.
 *
 * Writing a pipe with `fs.write` (pino's default destination) blocks a libuv thread once the pipe
 * is full, and the process then hangs at exit waiting for that thread — `node dist/main.js | head`
 * or a stalled log shipper is enough. Writes here go through Node's own stdout stream instead,
 * which puts a pipe in non-blocking mode and queues what the pipe does not take: nothing blocks,
 * and whatever is queued at exit is simply given up. While stdout is blocked, lines gather up to
 * `maxPendingLength` and the rest are dropped, counted in a line written once stdout drains; a
 * closed stdout (EPIPE) ends logging quietly. At exit, lines not yet handed to the stream are
 * written synchronously one by one while the pipe takes them whole (a pipe's non-blocking write of
 * a short line is all or nothing), then given up.
 */
export function createStdoutDestination(options: StdoutDestinationOptions): StdoutDestination {
  const { stream } = options;
  // A quarter of a Linux pipe's buffer: few writes under load, and a pipe that is read keeps taking them whole.
  const minLength = options.minLength ?? 16_384;
  const maxPendingLength = options.maxPendingLength ?? 1024 * 1024;
  let pending: string[] = [];
  let pendingLength = 0;
  let dropped = 0;
  let waitingForDrain = false;
  let closed = false;

  stream.on('error', () => {
    // EPIPE and the like: nobody will read stdout again. Stop logging rather than crash or queue.
    closed = true;
    pending = [];
    pendingLength = 0;
  });

  function take(): string {
    const text = pending.join('');
    pending = [];
    pendingLength = 0;
    return text;
  }

  function writeOut(): void {
    if (closed || waitingForDrain || pendingLength === 0) return;
    const text = take();
    if (stream.write(text)) return;
    waitingForDrain = true;
    stream.once('drain', () => {
      waitingForDrain = false;
      if (dropped > 0) {
        pending.unshift(droppedLine(dropped));
        pendingLength += pending[0]?.length ?? 0;
        dropped = 0;
      }
      writeOut();
    });
  }

  const timer = setInterval(writeOut, options.flushIntervalMs ?? 1000);
  timer.unref();

  options.onExit?.(() => {
    clearInterval(timer);
    // Lines already queued in the stream would be overtaken; a stream with a queue is blocked anyway.
    if (closed || stream.writableLength > 0 || typeof stream.fd !== 'number') return;
    for (const line of take().split(/(?<=\n)/)) {
      try {
        writeSync(stream.fd, line);
      } catch {
        return; // EAGAIN: the pipe is full; nothing more can go without blocking.
      }
    }
  });

  return {
    write(line) {
      if (closed) return;
      if (waitingForDrain && pendingLength + line.length > maxPendingLength) {
        dropped++;
        return;
      }
      pending.push(line);
      pendingLength += line.length;
      if (pendingLength >= minLength) writeOut();
    },
    flush(callback) {
      writeOut();
      if (callback === undefined) return;
      if (closed || stream.writableLength === 0) queueMicrotask(() => callback());
      else stream.once('drain', () => callback());
    },
  };
}

function droppedLine(count: number): string {
  return `${JSON.stringify({ level: 'warn', time: new Date().toISOString(), service: 'token-broker', dropped: count, msg: 'log lines dropped while stdout was blocked' })}\n`;
}
