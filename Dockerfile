# One image for every Tandem actor process (gateway, broker, prefill, decode); compose.yaml picks the role.
# It runs the TypeScript sources with tsx, and node-llama-cpp ships prebuilt CPU binaries, so nothing is
# compiled here. The model is not baked in: mount a directory of GGUF files at /models.
FROM node:20-bookworm-slim

WORKDIR /app

# The full install (not --omit=dev) because tsx, a devDependency, is what runs the sources. Install scripts
# are skipped: the prebuilt binaries arrive as optional dependencies. In the same layer, delete what a
# CPU-only engine never loads (gpu: false in src/engine/llama-cpp.ts): the CUDA and Vulkan llama.cpp builds
# (~620 MB) and the Deno binary (~90 MB).
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts \
    && rm -rf node_modules/@node-llama-cpp/*-cuda* node_modules/@node-llama-cpp/*-vulkan \
        node_modules/@deno node_modules/deno \
    && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY actors ./actors

# Files stay root-owned; the processes run as the image's unprivileged `node` user.
USER node

# One process per container: tsx as a loader, not a wrapper, so SIGTERM reaches Tandem directly and it
# closes its subscriptions and membership records before exiting.
ENTRYPOINT ["node", "--import", "tsx", "src/cli/main.ts"]
CMD ["--help"]
