#!/usr/bin/env bash
# The SDK as a user gets it: pack @symbia/messaging-client, install the tarball with npm into an
# empty Node project (no Bun in it), type-check a TypeScript consumer against it, then run .ci/sdk-node.mjs
# there with node against the compiled server (dist/symbia-messaging, built by `bun run build`).
# Usage: .ci/sdk-node.sh [path/to/symbia-messaging]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
binary=${1:-$repo/dist/symbia-messaging}
[ -x "$binary" ] || { echo "sdk-node: no executable at $binary (bun run build)"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "sdk-node: Node $(node --version) is older than 20"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/symbia-sdk-pack-XXXXXX")
trap 'rm -rf "$work"' EXIT

# npm pack builds first (the package's prepack is `bun run build:sdk`), so the tarball is never stale.
(cd packages/client && timeout 180 npm pack --silent --pack-destination "$work" >/dev/null)
tarball=$(ls "$work"/*.tgz)
echo "sdk-node: packed $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"

mkdir "$work/project" && cd "$work/project"
npm init -y >/dev/null
timeout 180 npm install --no-audit --no-fund --loglevel=error "$tarball" standardwebhooks@1.1.1
cp "$repo/.ci/sdk-node.mjs" "$repo/examples/echo-agent.mjs" "$repo/examples/streaming-agent.mjs" "$repo/examples/webhook-receiver.mjs" .

# A TypeScript consumer with Node's own module resolution sees the package's declarations.
cat >consumer.ts <<'TS'
import { MessagingClient, RealtimeError, type Message } from "@symbia/messaging-client";
const client = new MessagingClient({ baseUrl: "http://localhost:5005", apiKey: "k", retry: { attempts: 2 } });
const socket = client.realtime({ reconnect: { initialDelayMs: 100 } });
socket.on("message:new", (message: Message) => console.log(message.sequence.toFixed(0), message.content));
export const failed = (error: unknown) => error instanceof RealtimeError && error.code === "rate_limited";
TS
cat >tsconfig.json <<'JSON'
{ "compilerOptions": { "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "lib": ["es2022", "dom"], "types": [], "strict": true, "noEmit": true }, "files": ["consumer.ts"] }
JSON
timeout 120 node "$repo/node_modules/typescript/bin/tsc" -p tsconfig.json
echo "sdk-node: a TypeScript consumer (nodenext) type-checks against the package: ok"

timeout 240 node sdk-node.mjs "$binary"
