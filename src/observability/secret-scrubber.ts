/** Removes secret values from text. */
export type Scrub = (text: string) => string;

export const noScrub: Scrub = (text) => text;

export const redacted = '[redacted]';

/** Shorter values would match ordinary log text (a caller name, a field) and are left alone. */
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
  const plain = new Set<string>();
  for (const value of secrets) {
    if (value.length < minScrubbedLength) continue;
    plain.add(value);
    plain.add(encodeURIComponent(value));
  }
  const text = scrubberOf(plain);
  const inLines = scrubberOf(new Set([...plain].flatMap((value) => [value, JSON.stringify(value).slice(1, -1)])));
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
