# syntax=docker/dockerfile:1
# Gerbang's production image: dependencies installed (and the Prisma clients generated) in a build
# stage, then pruned to production dependencies only; the runtime runs as the unprivileged `node`
# user, keeps its data (secret, signing key) in /data and reads policies from /app/policies, which a
# deployment mounts read-only (docker run -v ./policies:/app/policies:ro, a Kubernetes ConfigMap).
#   docker build -t gerbang .
#   docker run --rm -p 8080:8080 -e GERBANG_SECRET=… -e DATABASE_URL=… -e REDIS_URL=… \
#     -v ./gerbang.yaml:/etc/gerbang/gerbang.yaml:ro -v ./policies:/app/policies:ro gerbang

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts tsconfig.json tsconfig.upstream.json ./
COPY scripts/install ./scripts/install
COPY prisma ./prisma
COPY src ./src
# postinstall generates the Prisma clients into src/generated and bundles typebox; prepare builds
# dist/upstream. Both need dev dependencies, which the prune then drops.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production PORT=8080
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/src ./src
COPY --from=build /app/dist ./dist
COPY package.json prisma.config.ts ./
COPY prisma ./prisma
COPY policies ./policies
RUN mkdir -p /data /etc/gerbang && chown node:node /data
USER node
EXPOSE 8080
VOLUME ["/data"]
# Liveness only: readiness (/readyz) is for the load balancer, which must stop sending requests to an
# instance whose database is down, while the orchestrator must not restart it for that.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "src/cli/gerbang.js"]
CMD ["serve", "--config", "/etc/gerbang/gerbang.yaml"]
