# syntax=docker/dockerfile:1
# edgellm: OpenAI-compatible server for GGUF models, for linux/amd64 and linux/arm64:
#   docker buildx build --platform linux/amd64,linux/arm64 -t edgellm .
#   docker run -p 8080:8080 -v edgellm-models:/models -e EDGELLM_PROFILE=edge-1gb edgellm
# Configuration is by environment: EDGELLM_PROFILE picks a file from config/, any config key
# is EDGELLM_<SECTION>_<KEY> (e.g. EDGELLM_MODEL_SOURCE, EDGELLM_SERVER_API_KEYS).

# The builder and the runtime must be the same Debian release (bookworm here). The unified-KV
# addon compiled in the builder links against that release's glibc and libstdc++, and
# node-llama-cpp records the distro in the build's metadata: on another release it test-loads the
# addon in a subprocess at every start, and if that fails the server runs without the unified KV
# pool. (The build folder's name hashes only the platform, arch, llama.cpp release and CMake
# options, so a mismatch does not make the build invisible; it makes it fragile.)
ARG BUILD_IMAGE=node:20.20.2-bookworm
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# Production node_modules, with node-llama-cpp's addon rebuilt for the unified KV pool.
FROM ${BUILD_IMAGE} AS build
# The compiler toolchain node-llama-cpp's source build needs (cmake-js drives cmake; git clones
# llama.cpp from the git bundle inside the package, offline). Versions are bookworm's.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake=3.25.* g++=4:12.2.* make=4.3-* git=1:2.39.* python3=3.11.* \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# `npm install` rather than `npm ci`: the lockfile cannot list node-llama-cpp's macOS/Windows
# binary packages (the registry this project is built against does not serve them), and npm ci
# refuses a lockfile without them. npm install keeps the locked versions and skips them. Its
# postinstall step (patch-package) applies patches/ to node-llama-cpp: the kvUnified option and
# the GCC 12 AMX fix for llama.cpp.
RUN npm install --no-audit --no-fund
# The unified-KV addon (scripts/build-addon.ts: node-llama-cpp's bundled llama.cpp, the portable
# profile: GGML_NATIVE=OFF, every CPU variant as a library picked at run time like the prebuilt
# addons, no -march=native), about 30 minutes on 2 cores, and far longer for an arm64 image
# built under QEMU emulation. Only the build script and its option sets are copied first, so
# source changes do not invalidate this layer. The server finds the build in
# node_modules/node-llama-cpp/llama/localBuilds/ and, with model.kvPool at its default (auto),
# uses the unified pool; the prebuilt addons stay in the image as the per-sequence fallback.
COPY scripts/build-addon.ts ./scripts/
COPY src/engine/addon-builds.ts ./src/engine/
# Then the build tree is trimmed to what loading needs (Release/ holds the addon and all its
# libraries; buildDone.status marks the build complete), and the llama.cpp checkout goes: without
# it, node-llama-cpp names builds after its built-in llama.cpp release, the one that was built.
# --verify fails the image build if the server would not find the trimmed build.
RUN npm run build:addon \
 && find node_modules/node-llama-cpp/llama/localBuilds -mindepth 2 -maxdepth 2 ! -name Release ! -name buildDone.status -exec rm -rf {} + \
 && rm -rf node_modules/node-llama-cpp/llama/llama.cpp \
 && npm run build:addon -- --verify \
 && npm prune --omit=dev \
 && npm cache clean --force
# dist/: the server compiled to JavaScript (scripts/build-dist.mjs, esbuild, a dependency that
# the prune keeps), which the runtime runs: no TypeScript loader on each start (README "Cold start").
# It bundles the patched node-llama-cpp, and the server's own packages, into dist/vendor/; the
# node-llama-cpp bundle finds the package's folders relative to itself: node_modules/ and dist/
# keep their places under /app in the runtime image.
COPY tsconfig.json ./
COPY scripts/build-dist.mjs ./scripts/
COPY src ./src
RUN node scripts/build-dist.mjs

FROM ${NODE_IMAGE} AS runtime
# tini as PID 1 forwards SIGTERM to the server (graceful drain) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.* \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node_modules with the unified-KV build (same Debian release as the builder, see the top).
COPY --from=build /app/node_modules ./node_modules
COPY package.json ./
# The compiled server, not src/: docker/entrypoint.sh runs dist/cli.js.
COPY --from=build /app/dist ./dist
COPY config ./config
COPY docker/entrypoint.sh docker/healthcheck.mjs ./docker/
# The server writes only to its volumes: /models (pulled and synthesized models) and /data (the
# playground's conversations, the memory estimates and the repacked-weights cache:
# server.dataDir's default beside model.dir).
RUN mkdir -p /models /data && chown node:node /models /data
USER node
ENV NODE_ENV=production \
    EDGELLM_SERVER_HOST=0.0.0.0 \
    EDGELLM_SERVER_PORT=8080 \
    EDGELLM_MODEL_DIR=/models
VOLUME ["/models", "/data"]
EXPOSE 8080
# /health is 503 while the model loads: start-period covers loading a model from a slow disk.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 CMD ["node", "/app/docker/healthcheck.mjs"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
CMD []
