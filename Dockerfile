# syntax=docker/dockerfile:1
# Build stage: compile TypeScript and native modules (better-sqlite3 builds from source).
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
# npm ci runs "prepare", which compiles src/ into dist/.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

# Runtime stage: no compilers, non-root user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY package.json ./
COPY config ./config
RUN groupadd --system customs && useradd --system --gid customs --home-dir /var/lib/customs customs \
 && mkdir -p /var/lib/customs && chown customs:customs /var/lib/customs
USER customs
EXPOSE 5000
VOLUME ["/var/lib/customs"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:5000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/customs.js"]
CMD ["serve", "--listen", "0.0.0.0:5000", "--data", "/var/lib/customs", "--config", "config/customs.yaml"]
