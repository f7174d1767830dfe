import { secretVariables } from './env-schema.js';

export interface ConfigWarning {
  readonly variable: string;
  readonly message: string;
}

/** The files handed to Node with `--env-file` or `--env-file-if-exists`, in order. */
export function envFilesOf(execArgv: readonly string[]): string[] {
  const files: string[] = [];
  for (let index = 0; index < execArgv.length; index++) {
    const match = /^--env-file(?:-if-exists)?(?:=(.*))?$/.exec(execArgv[index] ?? '');
    if (match === null) continue;
    const path = match[1] ?? execArgv[++index];
    if (path !== undefined && path !== '') files.push(path);
  }
  return files;
}

/**
 * Secrets that Node's `--env-file` has probably cut short. Node ends an unquoted value at its first
 * `#` (`A=x#y` and `A=x #y` both give `x`); a quoted one (`A="x#y"`) keeps it. A `#` after a space
 * is the usual way to write a comment, so it is left alone; a `#` straight after other characters,
 * or at the very start of the value, is almost never meant as one, and a password or key that held
 * it now holds only what came before. Warned only when the variable really has the cut value (a
 * variable already set in the environment wins over the file). Names only, never values.
 */
export function cutSecretWarnings(fileText: string, env: Readonly<Record<string, string | undefined>>): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const secrets: readonly string[] = secretVariables;
  for (const line of fileText.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    const [, name, value] = match ?? [];
    if (name === undefined || value === undefined || !secrets.includes(name) || /^["'`]/.test(value)) continue;
    const hash = value.indexOf('#');
    if (hash === -1 || (hash > 0 && /\s/.test(value.charAt(hash - 1)))) continue;
    if ((env[name] ?? '') !== value.slice(0, hash).trim()) continue;
    const where = hash === 0 ? 'starts with #' : 'has a # straight after other characters';
    warnings.push({
      variable: name,
      message: `${name}: its value in the env file ${where}, and Node's --env-file keeps only what comes before the #; if the # is part of the value, quote it: ${name}="…"`,
    });
  }
  return warnings;
}
