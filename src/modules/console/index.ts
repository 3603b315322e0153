/**
 * /console (the web console's page) and /console/assets/* (its script and style, content-hashed), served
 * from the executable itself. The page is the browser code of src/console/, which talks to this server
 * through the SDK like any client; nothing here is an API, and the routes are public like /docs.
 */
import { Elysia } from "elysia";
import { fail } from "../../core/errors";
import { describeError, log } from "../../log";
import type { BuiltFile } from "./build-bundle";
import { consoleBundle } from "./bundle";

/**
 * Only this origin: scripts and styles from files (no inline ones, no eval), connections to this server
 * (its WebSocket included: 'self' covers ws: and wss: of the same host), no framing, no plugins.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

interface ServedFile {
  type: string;
  body: Uint8Array;
  /** Gzipped once, for browsers that take it (all do): the bundle is text and shrinks to a third. */
  gzip: Uint8Array;
  etag: string;
}

let served: Promise<Map<string, ServedFile>> | undefined;

function servedFiles(): Promise<Map<string, ServedFile>> {
  served ??= consoleBundle().then(
    (files: BuiltFile[]) =>
      new Map(
        files.map((file) => {
          const body = new TextEncoder().encode(file.text);
          const etag = `"${Bun.hash(body).toString(36)}"`;
          return [file.name, { type: file.type, body, gzip: Bun.gzipSync(body), etag }];
        }),
      ),
    (error) => {
      served = undefined;
      log.error("console bundle failed", describeError(error));
      throw error;
    },
  );
  return served;
}

function answer(request: Request, file: ServedFile, headers: Record<string, string>): Response {
  const common = { "content-type": file.type, etag: file.etag, vary: "accept-encoding", ...headers };
  if (request.headers.get("if-none-match") === file.etag) return new Response(null, { status: 304, headers: common });
  const gzip = /\bgzip\b/.test(request.headers.get("accept-encoding") ?? "");
  return new Response(gzip ? file.gzip : file.body, { headers: gzip ? { ...common, "content-encoding": "gzip" } : common });
}

const hidden = { detail: { hide: true } };

export function consoleModule() {
  const page = async ({ request }: { request: Request }) => {
    const file = (await servedFiles()).get("index.html")!;
    // The page names the hashed assets of this build: always revalidated, never stale after an upgrade.
    return answer(request, file, { "content-security-policy": CONSOLE_CSP, "cache-control": "no-cache" });
  };
  return new Elysia({ name: "console" })
    .get("/console", page, hidden)
    .get("/console/", page, hidden)
    .get(
      "/console/assets/:name",
      async ({ params, request }) => {
        const file = params.name === "index.html" ? undefined : (await servedFiles()).get(params.name);
        if (!file) throw fail.not_found("Route not found");
        // A hashed name never changes content.
        return answer(request, file, { "cache-control": "public, max-age=31536000, immutable" });
      },
      hidden,
    );
}
