# Build and runtime share one base family (Node 26 LTS on Debian bookworm, slim).

FROM node:26-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:26-bookworm-slim
ENV NODE_ENV=production
# The broker's live heap is about 25 MiB; without a cap V8 lets garbage pile up to ~190 MiB RSS
# under load before it collects. 128 MiB of old space keeps it near 130 MiB at no cost in speed
# (bench/RESULTS.md). Buffered bodies live outside this heap.
ENV NODE_OPTIONS=--max-old-space-size=128
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs
USER node
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["node", "docker/healthcheck.mjs"]
CMD ["node","dist/main.js"]
