/**
 * The operator's way into a running server: a unix socket (mode 0600, so only the account running the
 * server can use it) answering a small JSON protocol. The CLI uses it first, because the embedded
 * database admits one process only, and because a change made inside the server empties that server's
 * credential cache at once.
 *
 * Protocol (HTTP over the socket):
 *   GET  /v1/ping          -> 200 {ok: true, pid, version}
 *   POST /v1/<operation>   body: the operation's arguments as JSON
 *                          -> 200 {result} | 4xx/5xx {error, code}
 */
import { lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { fail } from "../core/errors";
import { errorResponse } from "../http/error-response";
import { describeError, log } from "../log";
import { VERSION } from "../version";
import { runOperatorOperation } from "./operations";
import type { IdentityDirectory } from "../auth/identity-directory";

export const OPERATOR_PROTOCOL_PREFIX = "/v1/";

export interface OperatorSocket {
  path: string;
  stop(): void;
}

function json(status: number, body: unknown): Response {
  return Response.json(body, { status });
}

const errorAnswer = (error: unknown, operation: string) => errorResponse(error, { method: "POST", path: operation });

async function handle(request: Request, admin: IdentityDirectory): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (!path.startsWith(OPERATOR_PROTOCOL_PREFIX)) return errorAnswer(fail.not_found("Unknown path"), path);
  const operation = path.slice(OPERATOR_PROTOCOL_PREFIX.length);
  if (operation === "ping") return json(200, { ok: true, pid: process.pid, version: VERSION });
  if (request.method !== "POST") return errorAnswer(fail.method_not_allowed("Use POST"), operation);
  let args: unknown;
  try {
    const text = await request.text();
    args = text ? JSON.parse(text) : {};
  } catch {
    return errorAnswer(fail.invalid_json(), operation);
  }
  try {
    return json(200, { result: await runOperatorOperation(admin, operation, args) });
  } catch (error) {
    return errorAnswer(error, operation);
  }
}

/** Whether some process answers on the socket (a live server), as opposed to a file left by a crash. */
async function answers(path: string): Promise<boolean> {
  try {
    await fetch(`http://admin${OPERATOR_PROTOCOL_PREFIX}ping`, { unix: path, signal: AbortSignal.timeout(1000) } as RequestInit);
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens the socket, or logs why not and returns undefined: the HTTP service works without it, and on
 * PostgreSQL the CLI can still reach the database directly.
 */
export async function startOperatorSocket(path: string, admin: IdentityDirectory): Promise<OperatorSocket | undefined> {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const existing = lstatSync(path, { throwIfNoEntry: false });
    if (existing) {
      if (!existing.isSocket()) {
        log.warn("admin socket not started: the path exists and is not a socket", { path });
        return undefined;
      }
      if (await answers(path)) {
        log.warn("admin socket not started: another server answers on it", { path });
        return undefined;
      }
      unlinkSync(path);
    }
    // Create the socket without group or world access from the first instant, not just after a chmod.
    const previousMask = process.umask(0o177);
    let server: ReturnType<typeof Bun.serve>;
    try {
      server = Bun.serve({ unix: path, fetch: (request) => handle(request, admin) });
    } finally {
      process.umask(previousMask);
    }
    const inode = lstatSync(path).ino;
    log.debug("admin socket listening", { path });
    return {
      path,
      stop() {
        server.stop(true);
        // Bun removes the file itself; this covers the case where it did not, without touching a socket
        // some newer process has since created at the same path.
        const left = lstatSync(path, { throwIfNoEntry: false });
        if (left && left.ino === inode) unlinkSync(path);
      },
    };
  } catch (error) {
    log.warn("admin socket not started", { path, ...describeError(error) });
    return undefined;
  }
}
