/** Removes secret values from text. */
export type Scrub = (text: string) => string;

export const noScrub: Scrub = (text) => text;

export const redacted = '[redacted]';

/**
 * In whole log lines, shorter values would match ordinary text (a caller name, a field name) and are
 * left alone. Text an upstream sent is scrubbed of every secret, however short: it is untrusted, and
 * a few words lost from an error id cost less than a short password in the log.
 */
export const minScrubbedLength = 8;

export interface SecretScrubber {
  /** For text an upstream sent, before it becomes part of a log object. */
  readonly text: Scrub;
  /** For a finished JSON log line: also finds secrets as JSON escaped them, and keeps the line JSON. */
  readonly line: Scrub;
}

/** A line that replacing a secret would have made invalid JSON (a secret that is also a number, say). */
const withheldLine = `{"level":"error","service":"token-broker","msg":"log line withheld: it held a configured secret"}\n`;

/**
 * Built once from the configured secrets. Each secret is also looked for URL-encoded, as it would
 * appear in a URL an upstream echoed, and (in lines) as JSON escaped it. One regular expression
 * scans a line once for all of them.
 */
export function createSecretScrubber(secrets: Iterable<string>): SecretScrubber {
  const all = new Set<string>();
  for (const value of secrets) {
    if (value === '') continue;
    all.add(value);
    all.add(encodeURIComponent(value));
  }
  const long = [...all].filter((form) => form.length >= minScrubbedLength);
  const text = scrubberOf(all);
  const inLines = scrubberOf(new Set(long.flatMap((value) => [value, JSON.stringify(value).slice(1, -1)])));
  return {
    text,
    line(line) {
      const out = inLines(line);
      if (out === line) return line;
      try {
        JSON.parse(out);
        return out;
      } catch {
        return withheldLine;
      }
    },
  };
}

function scrubberOf(forms: ReadonlySet<string>): Scrub {
  if (forms.size === 0) return noScrub;
  // Longest first: where one secret contains another, the whole of it is removed.
  const pattern = [...forms]
    .sort((a, b) => b.length - a.length)
    .map((form) => form.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('|');
  const secretsIn = new RegExp(pattern, 'g');
  return (text) => text.replace(secretsIn, redacted);
}
