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
import { AppError } from "../http/errors";
import { describeError, log } from "../log";
import { VERSION } from "../version";
import { runAdminOperation } from "./admin-operations";
import type { IdentityAdmin } from "./identity-admin";

export const ADMIN_PROTOCOL_PREFIX = "/v1/";

export interface AdminSocket {
  path: string;
  stop(): void;
}

function json(status: number, body: unknown): Response {
  return Response.json(body, { status });
}

async function handle(request: Request, admin: IdentityAdmin): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (!path.startsWith(ADMIN_PROTOCOL_PREFIX)) return json(404, { error: "Unknown path", code: "not_found" });
  const operation = path.slice(ADMIN_PROTOCOL_PREFIX.length);
  if (operation === "ping") return json(200, { ok: true, pid: process.pid, version: VERSION });
  if (request.method !== "POST") return json(405, { error: "Use POST", code: "method_not_allowed" });
  let args: unknown;
  try {
    const text = await request.text();
    args = text ? JSON.parse(text) : {};
  } catch {
    return json(400, { error: "Request body is not valid JSON", code: "invalid_json" });
  }
  try {
    return json(200, { result: await runAdminOperation(admin, operation, args) });
  } catch (error) {
    if (error instanceof AppError) return json(error.status, error.toBody());
    log.error("admin operation failed", { operation, ...describeError(error) });
    return json(500, { error: error instanceof Error ? error.message : "Operation failed", code: "internal_error" });
  }
}

/** Whether some process answers on the socket (a live server), as opposed to a file left by a crash. */
async function answers(path: string): Promise<boolean> {
  try {
    await fetch(`http://admin${ADMIN_PROTOCOL_PREFIX}ping`, { unix: path, signal: AbortSignal.timeout(1000) } as RequestInit);
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens the socket, or logs why not and returns undefined: the HTTP service works without it, and on
 * PostgreSQL the CLI can still reach the database directly.
 */
export async function startAdminSocket(path: string, admin: IdentityAdmin): Promise<AdminSocket | undefined> {
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
