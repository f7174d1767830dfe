// Container HEALTHCHECK without curl or wget in the image: the liveness probe of both doors. The
// container is healthy only when the public door (PORT) and the internal door (INTERNAL_PORT) both
// answer /healthz with 200; either one down is exit 1.
const host = (() => {
  const listen = process.env.HOST ?? '';
  // A wildcard listener (every interface) is reached on loopback; a specific address on itself.
  if (listen === '' || listen === '0.0.0.0' || listen === '::') return '127.0.0.1';
  return listen.includes(':') ? `[${listen}]` : listen;
})();
const ports = [process.env.PORT || '8080', process.env.INTERNAL_PORT || '8081'];

const answers = await Promise.all(
  ports.map((port) =>
    fetch(`http://${host}:${port}/healthz`, { signal: AbortSignal.timeout(2_000) }).then(
      (res) => res.ok,
      () => false,
    ),
  ),
);
process.exit(answers.every(Boolean) ? 0 : 1);
