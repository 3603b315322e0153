/**
 * Errors the SDK throws. Both carry the server's machine code (`not_participant`, `too_large`, ...), so
 * callers branch on `code` whichever transport failed.
 */

/** A REST call answered with an error status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds to wait, when the server said so (429). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/**
 * A WebSocket request that failed: the server's ack error, or one of the client's own codes:
 * `timeout` (no ack in time), `disconnected` (the socket closed first; the frame may or may not have been
 * handled — resend a message with the same `id` to be sure), `not_connected`, `closed` (the client was closed),
 * `no_websocket` (the runtime has none and none was given). `rate_limited` reaches the caller only once the
 * retries are used up.
 */
export class RealtimeError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly event?: string,
    /** For `rate_limited`: how long the server asked to wait, when it said. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "RealtimeError";
  }
}
