// Loaded with `node --import` before the broker (test/observability/tracing.test.ts): records every
// OpenTelemetry module the process resolves, and prints them as one line on stderr at exit, so a
// test can tell whether tracing loaded its SDK. Plain JavaScript: it runs before tsx is loaded.
import { writeSync } from 'node:fs';
import { registerHooks } from 'node:module';

const loaded = new Set();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    const match = /\/node_modules\/(@opentelemetry\/[^/]+)\//.exec(resolved.url);
    if (match !== null) loaded.add(match[1]);
    return resolved;
  },
});
process.on('exit', () => writeSync(2, `\nopentelemetry modules loaded: ${JSON.stringify([...loaded].sort())}\n`));
