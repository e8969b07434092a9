# syntax=docker/dockerfile:1
# edgellm: OpenAI-compatible server for GGUF models. Multi-arch (linux/amd64, linux/arm64):
#   docker buildx build --platform linux/amd64,linux/arm64 -t edgellm .

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# node-llama-cpp ships prebuilt CPU addons for linux x64/arm64 inside npm packages: no compiler needed.
RUN npm ci --omit=dev && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.* curl=7.88.* \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY config ./config
COPY docker/entrypoint.sh ./docker/entrypoint.sh
RUN mkdir -p /models && chown node:node /models
USER node
ENV NODE_ENV=production \
    EDGELLM_SERVER_HOST=0.0.0.0 \
    EDGELLM_SERVER_PORT=8080 \
    EDGELLM_MODEL_DIR=/models
VOLUME ["/models"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${EDGELLM_SERVER_PORT}/health" || exit 1
ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
CMD []
