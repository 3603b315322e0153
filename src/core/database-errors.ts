/**
 * What a database error means, looked up through Drizzle's and postgres.js's wrappers. Both transports use
 * it to tell "PostgreSQL cannot be reached" (503) from a bug (500), and the domain to recognise constraint
 * violations it turns into answers (a duplicate client id, a vanished conversation).
 */

/** PostgreSQL error codes that mean the database cannot be reached or is shutting down. */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"]);
const UNAVAILABLE_ERRNOS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: any = error, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (typeof e.code === "string" && (UNAVAILABLE_SQLSTATES.has(e.code) || UNAVAILABLE_ERRNOS.has(e.code))) return true;
  }
  return false;
}

/** SQLSTATE of a database error, looking through Drizzle's wrapper. */
export function sqlState(error: unknown): string | undefined {
  for (let e: any = error, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

export function constraintName(error: unknown): string | undefined {
  for (let e: any = error, depth = 0; e && depth < 4; e = e.cause, depth++) {
    const name = e.constraint_name ?? e.constraint;
    if (typeof name === "string") return name;
  }
  return undefined;
}
