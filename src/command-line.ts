/** What `node dist/main.js [flag]` was asked to do. */
export type Command =
  { kind: 'serve' } | { kind: 'check-config' } | { kind: 'help' } | { kind: 'version' } | { kind: 'usage-error'; message: string };

export const usage = `Usage: node dist/main.js [option]

Runs the token broker: the public door on PORT, the internal door on INTERNAL_PORT. It is configured
by environment variables only (the README's Configuration section; .env.example lists them all).

Options:
  --check-config  validate the configuration, print any problem and exit (0 valid, 1 invalid);
                  listens on nothing and calls no upstream
  -h, --help      print this help and exit
  --version       print the version and exit`;

/**
 * One option at most. Anything else is refused, so a typo (`--check-confg`) can never start the
 * broker for real. An argument is echoed only when it looks like an option: a positional argument
 * might be a secret typed in the wrong place.
 */
export function parseCommandLine(args: readonly string[]): Command {
  if (args.length === 0) return { kind: 'serve' };
  const [first] = args;
  if (args.length > 1) return { kind: 'usage-error', message: 'Give one option at most.' };
  if (first === '--check-config') return { kind: 'check-config' };
  if (first === '--help' || first === '-h') return { kind: 'help' };
  if (first === '--version') return { kind: 'version' };
  return {
    kind: 'usage-error',
    message: first !== undefined && /^--?[A-Za-z][A-Za-z0-9-]{0,40}$/.test(first) ? `Unknown option ${first}.` : 'Unexpected argument.',
  };
}
