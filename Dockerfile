# syntax=docker/dockerfile:1
# The `churn` CLI as a container image: TypeScript compiled to JavaScript by tsc, production dependencies only,
# run as the unprivileged `node` user.
#
#   docker build -t churn-pipeline .
#   docker run --rm churn-pipeline --version
#   docker run --rm -v churn-demo:/work churn-pipeline demo                 # the sample, end to end
#   docker run --rm -v "$PWD:/work" churn-pipeline run --config churn.yaml  # your config, exports and out/
#
# The working directory is /work: mount the folder that holds churn.yaml (paths in it are relative to it) and
# where out/ (with the run ledger and lock in out/_state/) and .churn/ are written; it must be writable by uid 1000.
# test/dockerfile.test.ts checks this file's structure where no Docker engine is at hand.

ARG NODE_VERSION=22

# 1. build: every dependency, then tsc compiles the sources to dist/ (bin/build.mjs: types checked, sql/ and
#    the default config copied beside the JavaScript).
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY config ./config
COPY pipelines ./pipelines
COPY transforms ./transforms
COPY types ./types
COPY sql ./sql
RUN npm run build

# 2. deps: the production dependencies alone (DuckDB's native binding for this platform included).
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. runtime: compiled JavaScript + production node_modules; `churn` on the PATH.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
LABEL org.opencontainers.image.title="churn-pipeline" \
      org.opencontainers.image.description="Nightly churn ETL on DuckDB: customer-period facts, cohorts, churn, NPS/CSAT, early warning, audience" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./
RUN chmod 0755 /app/bin/churn.mjs \
    && ln -s /app/bin/churn.mjs /usr/local/bin/churn \
    && mkdir -p /work \
    && chown node:node /work
USER node
WORKDIR /work
ENTRYPOINT ["churn"]
CMD ["--help"]
