/**
 * Where an operator command runs. First the running server, through its admin socket: the embedded
 * database admits one process, and a change made inside the server takes effect there at once. When
 * nothing answers on the socket, the CLI opens the database itself and runs the same operation; on
 * PostgreSQL it then announces the change with NOTIFY so that running instances drop their caches.
 */
import { runOperatorOperation, type OperatorOperation } from "../operator/operations";
import { OPERATOR_PROTOCOL_PREFIX } from "../operator/operator-socket";
import { startAuthRelay } from "../broker/postgres/auth-relay";
import { IdentityDirectory } from "../auth/identity-directory";
import type { AuthChange } from "../auth/identity";
import type { Config } from "../config";
import { openDatabase } from "../db/client";
import { DataDirInUseError } from "../db/data-dir-lock";
import { migrate } from "../db/migrate";
import { EventBus } from "../core/event-bus";
import { AppError, isErrorCode, type ErrorCode } from "../core/errors";

/** How long an operation through the socket may take (password hashing included). */
const SOCKET_TIMEOUT_MS = 30_000;

export interface OperatorTarget {
  config: Config;
  /** --socket; defaults to the configured ADMIN_SOCKET. */
  socketPath?: string;
}

/** Errors of a socket that nobody serves: a missing file, or a file left behind by a stopped server. */
function isNobodyThere(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === "ENOENT" || code === "ECONNREFUSED" || code === "ENOTSOCK" || code === "FailedToOpenSocket";
}

async function throughSocket(path: string, operation: OperatorOperation, args: unknown): Promise<{ result: unknown } | undefined> {
  let response: Response;
  try {
    response = await fetch(`http://admin${OPERATOR_PROTOCOL_PREFIX}${operation}`, {
      unix: path,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(args),
      signal: AbortSignal.timeout(SOCKET_TIMEOUT_MS),
    } as RequestInit);
  } catch (error) {
    if (isNobodyThere(error)) return undefined;
    if ((error as Error)?.name === "TimeoutError") {
      throw new Error(`the server did not answer on its admin socket ${path} within ${SOCKET_TIMEOUT_MS / 1000} s`);
    }
    throw new Error(`cannot use the admin socket ${path}: ${(error as Error)?.message ?? error}`);
  }
  const body = (await response.json().catch(() => ({}))) as { result?: unknown; error?: string; code?: string };
  if (!response.ok) {
    throw isErrorCode(body.code ?? "") ? new AppError(body.code as ErrorCode, body.error) : new Error(body.error ?? `the server answered ${response.status}`);
  }
  return { result: body.result };
}

async function directly(config: Config, socketPath: string | undefined, operation: OperatorOperation, args: unknown): Promise<unknown> {
  let database;
  try {
    database = await openDatabase({ databaseUrl: config.databaseUrl, poolSize: 2, dataDir: config.dataDir });
  } catch (error) {
    if (error instanceof DataDirInUseError) {
      throw new Error(
        `${error.message}; its admin socket ${socketPath ?? "(disabled)"} does not answer: ` +
          `point --socket (or ADMIN_SOCKET) at the server's socket`,
      );
    }
    throw error;
  }
  try {
    // A fresh data directory or database: the same migrations the server would apply at start.
    await migrate(database.db);
    const changes = new EventBus<AuthChange>("auth changes");
    const relay = await startAuthRelay(database, changes, { listen: false });
    try {
      return await runOperatorOperation(new IdentityDirectory(database.db, changes), operation, args);
    } finally {
      await relay.stop();
    }
  } finally {
    await database.close();
  }
}

export async function runOperation(target: OperatorTarget, operation: OperatorOperation, args: unknown): Promise<unknown> {
  const socketPath = target.socketPath ?? target.config.adminSocket;
  if (socketPath) {
    const answer = await throughSocket(socketPath, operation, args);
    if (answer) return answer.result;
  }
  return directly(target.config, socketPath, operation, args);
}
