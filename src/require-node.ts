/**
 * Imported first by the entry points, so it runs before any other module is evaluated: on an older
 * Node the broker's dependencies fail at import with errors that name nothing a user could act on.
 */
const requiredMajor = 26;
if (Number(process.versions.node.split('.')[0]) < requiredMajor) {
  console.error(
    `The broker needs Node ${requiredMajor}; this is Node ${process.versions.node}. ` +
      'Run it with `npm start` or `npx node dist/main.js`, which use the Node 26 that `npm install` put in node_modules.',
  );
  process.exit(1);
}
