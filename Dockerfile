# syntax=docker/dockerfile:1
# edgellm: OpenAI-compatible server for GGUF models, for linux/amd64 and linux/arm64:
#   docker buildx build --platform linux/amd64,linux/arm64 -t edgellm .
#   docker run -p 8080:8080 -v edgellm-models:/models -e EDGELLM_PROFILE=edge-1gb edgellm
# Configuration is by environment: EDGELLM_PROFILE picks a file from config/, any config key
# is EDGELLM_<SECTION>_<KEY> (e.g. EDGELLM_MODEL_SOURCE, EDGELLM_SERVER_API_KEYS).

ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# Production node_modules. Dev dependencies come in only for the postinstall step
# (patch-package applies patches/ to node-llama-cpp) and are pruned right after.
# The engine runs on node-llama-cpp's prebuilt CPU addons (npm packages for x64 and arm64,
# the CPU variant picked at run time), so this stage needs no compiler. Building the
# unified-KV addon from the bundled llama.cpp source (portable GGML_CPU_ALL_VARIANTS build
# with the AMX fix) belongs in a builder stage here and is tracked as a separate issue.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# `npm install` rather than `npm ci`: the lockfile cannot list node-llama-cpp's macOS/Windows
# binary packages (the registry this project is built against does not serve them), and npm ci
# refuses a lockfile without them. npm install keeps the locked versions and skips them.
RUN npm install --no-audit --no-fund && npm prune --omit=dev && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# tini as PID 1 forwards SIGTERM to the server (graceful drain) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.* \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY config ./config
COPY docker/entrypoint.sh docker/healthcheck.mjs ./docker/
# The models volume is the only place the server writes (pulled and synthesized models).
RUN mkdir -p /models && chown node:node /models
USER node
ENV NODE_ENV=production \
    EDGELLM_SERVER_HOST=0.0.0.0 \
    EDGELLM_SERVER_PORT=8080 \
    EDGELLM_MODEL_DIR=/models
VOLUME ["/models"]
EXPOSE 8080
# /health is 503 while the model loads: start-period covers loading a model from a slow disk.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 CMD ["node", "/app/docker/healthcheck.mjs"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
CMD []
