/**
 * The one error type of the product. Domain code throws it; REST maps it to `{error, code}` with its
 * status, and the WebSocket maps it to an ack error with the same code.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra response headers, e.g. Retry-After on 429. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "AppError";
  }

  toBody(): { error: string; code: string } {
    return { error: this.message, code: this.code };
  }
}

export const badRequest = (message: string, code = "invalid_input") => new AppError(400, code, message);
export const unauthorized = (message = "Authentication required", code = "unauthorized") =>
  new AppError(401, code, message);
export const forbidden = (message = "Not allowed", code = "forbidden") => new AppError(403, code, message);
export const notFound = (what = "Resource", code = "not_found") => new AppError(404, code, `${what} not found`);
export const conflict = (message: string, code = "conflict") => new AppError(409, code, message);
export const tooLarge = (message: string, code = "too_large") => new AppError(413, code, message);
export const rateLimited = (retryAfterSeconds: number, message = "Too many requests") =>
  new AppError(429, "rate_limited", message, { "retry-after": String(Math.max(1, Math.ceil(retryAfterSeconds))) });
export const unavailable = (message = "Database unavailable", code = "database_unavailable") =>
  new AppError(503, code, message);
export const badGateway = (message: string, code: string) => new AppError(502, code, message);

/** PostgreSQL error codes that mean the database cannot be reached or is shutting down. */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"]);
const UNAVAILABLE_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT"]);

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
