/**
 * The one place where an error becomes an HTTP answer `{error, code}` with its status: for the request
 * gate, for every route (Elysia's onError), and for the operator socket. AppError codes and statuses come
 * from the catalogue (src/core/errors.ts); anything unexpected is logged here and answered as 500 without
 * details.
 */
import { ValidationError } from "elysia";
import { AppError, fail } from "../core/errors";
import { isDatabaseUnavailable } from "../core/database-errors";
import { describeError, log } from "../log";

export interface ErrorAnswer {
  status: number;
  body: { error: string; code: string };
  headers?: Record<string, string>;
}

/** Where the error happened, for the log line of an unexpected one. */
export interface ErrorContext {
  requestId?: string;
  method?: string;
  path?: string;
  /** Elysia's classification of the error, when it comes from Elysia ("PARSE", "NOT_FOUND", …). */
  elysiaCode?: string | number;
}

/** A short, schema-free description of what failed validation: the field and the expectation. */
function describeValidation(error: ValidationError): string {
  const first = error.valueError;
  if (!first) return "Invalid input";
  const field = first.path ? first.path.replace(/^\//, "").replace(/\//g, ".") : error.type;
  return `${field || error.type}: ${first.message}`;
}

function answer(error: AppError): ErrorAnswer {
  return { status: error.status, body: error.toBody(), headers: error.headers };
}

/** Turns any error into what the client is told. */
export function toAppError(error: unknown, context: ErrorContext = {}): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof ValidationError && error.type === "response") {
    // An answer that does not match its documented schema is the server's fault, not the caller's.
    log.error("response does not match its schema", { requestId: context.requestId, path: context.path, detail: describeValidation(error) });
    return fail.internal_error();
  }
  if (error instanceof ValidationError) {
    // A malformed id in a path names nothing that exists.
    return error.type === "params" ? fail.not_found() : fail.invalid_input(describeValidation(error));
  }
  if (context.elysiaCode === "PARSE") {
    // A parse hook's own refusal (not JSON at all, not an object, too deep) keeps its message and code.
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof AppError ? cause : fail.invalid_json();
  }
  if (context.elysiaCode === "NOT_FOUND") return fail.not_found("Route not found");
  if (isDatabaseUnavailable(error)) return fail.database_unavailable();
  log.error("unhandled error", { requestId: context.requestId, method: context.method, path: context.path, ...describeError(error) });
  return fail.internal_error();
}

export function errorAnswer(error: unknown, context: ErrorContext = {}): ErrorAnswer {
  return answer(toAppError(error, context));
}

/** The same answer as a Response (the gate and the operator socket answer outside Elysia's handlers). */
export function errorResponse(error: unknown, context: ErrorContext = {}, extraHeaders?: Record<string, string>): Response {
  const { status, body, headers } = errorAnswer(error, context);
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...extraHeaders, ...headers },
  });
}
