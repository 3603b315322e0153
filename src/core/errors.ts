/**
 * The one error type of the product and the catalogue of every code it can carry.
 *
 * Domain code throws `fail.<code>(message?)`; the status comes from the catalogue, never from the throw
 * site. Each transport maps an AppError to the wire in one function: REST in src/http/error-response.ts
 * (`{error, code}` with the status), the WebSocket in src/realtime/dispatch.ts (an ack or `error` frame
 * with the same code). docs/api.md lists the codes per endpoint; this file is where they are defined.
 */

interface CatalogueEntry {
  status: number;
  /** The message used when a throw site gives none. */
  message: string;
  /** What the code tells a client, for the docs and for whoever adds a throw site. */
  meaning: string;
}

export const ERROR_CATALOGUE = {
  // 400: the request itself is wrong
  invalid_input: { status: 400, message: "Invalid input", meaning: "A field or parameter failed validation; the message names it." },
  invalid_json: { status: 400, message: "Request body is not valid JSON", meaning: "The body could not be parsed as JSON." },
  unsupported_media_type: {
    status: 400,
    message: "Request body must be JSON (Content-Type: application/json)",
    meaning: "A body was sent with another content type.",
  },
  invalid_header: { status: 400, message: "Invalid header", meaning: "A scope header is too long or has a value outside its list." },
  environment_mismatch: { status: 400, message: "Wrong environment", meaning: "X-Env names another environment than the server's." },
  invalid_cursor: { status: 400, message: "Invalid cursor", meaning: "before/after is neither a sequence number nor an ISO-8601 time." },
  invalid_reference: {
    status: 400,
    message: "The reference does not name a message of this conversation",
    meaning: "replyTo or preemptedBy names no message of the conversation.",
  },
  invalid_text: { status: 400, message: "Text holds a NUL character or an unpaired surrogate", meaning: "Text PostgreSQL cannot store." },
  invalid_content_type: { status: 400, message: "Invalid contentType", meaning: "contentType is not a media type or short token." },
  reserved_content_type: { status: 400, message: "contentType event is reserved for control events", meaning: "Use /control to send events." },
  invalid_json_content: { status: 400, message: "content is not valid JSON", meaning: "contentType application/json with content that does not parse." },
  empty_content: { status: 400, message: "content must not be empty", meaning: "A message needs non-blank content." },
  metadata_too_deep: { status: 400, message: "metadata nests too deep", meaning: "metadata nests deeper than the limit." },
  name_required: { status: 400, message: "A name is required", meaning: "Group conversations need a non-blank name." },
  too_many_participants: { status: 400, message: "Too many participants", meaning: "A private conversation holds at most two participants." },
  invalid_role_change: { status: 400, message: "Invalid role change", meaning: "The owner changes role only by transferring ownership." },
  target_required: { status: 400, message: "A target is required", meaning: "stream.route and stream.handoff need a target participant." },
  invalid_target: { status: 400, message: "Invalid target", meaning: "The target names no participant of the conversation." },
  unknown_operation: { status: 400, message: "Unknown operation", meaning: "The operator socket was asked for an operation it does not know." },
  invalid_webhook_url: {
    status: 400,
    message: "Invalid webhook URL",
    meaning: "The url is not an http(s) URL without credentials, or its host does not resolve.",
  },
  webhook_url_forbidden: {
    status: 400,
    message: "Webhook URL not allowed",
    meaning: "The url resolves to a loopback, private, link-local or otherwise non-public address.",
  },
  // WebSocket frames that cannot be understood (sent as ack or error frames, never as HTTP statuses)
  invalid_frame: { status: 400, message: "Invalid frame", meaning: "A WebSocket frame is not a JSON object {event, data, ack?}." },
  unknown_event: { status: 400, message: "Unknown event", meaning: "A WebSocket frame names an event the server does not handle." },

  // 401: who is asking is unknown
  unauthorized: { status: 401, message: "Authentication required", meaning: "No credential was given on a route that needs one." },
  invalid_credentials: { status: 401, message: "Invalid credentials", meaning: "The token, key, email or password is wrong." },
  credential_expired: { status: 401, message: "Credential expired", meaning: "The session or API key is past its expiry." },
  credential_revoked: { status: 401, message: "Credential revoked", meaning: "The session was logged out or the key revoked." },
  principal_disabled: { status: 401, message: "Principal is disabled", meaning: "The account or agent was disabled by an operator." },

  // 403: known, but not allowed
  forbidden: { status: 403, message: "Not allowed", meaning: "A generic refusal." },
  not_participant: { status: 403, message: "You are not a participant of this conversation", meaning: "The caller must participate." },
  insufficient_role: { status: 403, message: "Insufficient role", meaning: "The caller's role in the conversation is not enough." },
  org_forbidden: { status: 403, message: "Organization not allowed", meaning: "The caller is not a member (or admin) of the organization." },
  admin_required: { status: 403, message: "This needs a system admin (messaging:admin)", meaning: "Admin API without messaging:admin." },
  missing_entitlement: { status: 403, message: "Missing entitlement", meaning: "A control event needs an entitlement the caller lacks." },
  not_sender: { status: 403, message: "Only the sender can do this", meaning: "Only a message's sender may edit it." },
  not_editable: { status: 403, message: "Control events cannot be edited", meaning: "Stored control events are immutable." },
  not_allowed: { status: 403, message: "Not allowed", meaning: "Deleting another's message needs owner or admin role." },
  not_joinable: { status: 403, message: "This conversation cannot be joined", meaning: "Only group conversations can be joined." },
  owner_cannot_leave: { status: 403, message: "The owner cannot leave", meaning: "Transfer ownership first." },
  owner_cannot_be_removed: { status: 403, message: "The owner cannot be removed", meaning: "The owner stays until ownership moves." },
  act_as_forbidden: {
    status: 403,
    message: "You may not act for this principal",
    meaning: "X-As-User-Id (or asUserId) without messaging:act-as, or naming a principal outside the caller's organisations.",
  },
  origin_forbidden: {
    status: 403,
    message: "This origin may not open the WebSocket with the session cookie",
    meaning: "A cookie-authenticated upgrade from another origin than the server's own or ALLOWED_ORIGINS.",
  },
  invitation_only: {
    status: 403,
    message: "This conversation cannot be joined: an owner or admin adds participants",
    meaning: "A group of no organization is joined only by being added.",
  },
  connection_closed: { status: 403, message: "The connection closed", meaning: "A WebSocket join ended because its socket closed." },
  metrics_forbidden: {
    status: 403,
    message: "GET /metrics needs the METRICS_TOKEN bearer token",
    meaning: "METRICS_TOKEN is set and the scrape did not send it as Authorization: Bearer.",
  },

  // 404
  not_found: { status: 404, message: "Resource not found", meaning: "Nothing with that id exists for the caller (malformed ids too)." },

  method_not_allowed: { status: 405, message: "Method not allowed", meaning: "The operator socket takes POST for operations." },

  // 409
  conflict: { status: 409, message: "Conflict", meaning: "The request conflicts with the current state." },
  duplicate_id: { status: 409, message: "A message with this id already exists", meaning: "The client id was used by another sender or conversation." },
  already_participant: { status: 409, message: "This principal is already a participant", meaning: "Adding someone already there." },
  conversation_full: { status: 409, message: "A private conversation holds at most two participants", meaning: "No room left." },
  message_deleted: { status: 409, message: "The message was deleted", meaning: "A deleted message cannot be edited." },
  email_taken: { status: 409, message: "Email already in use", meaning: "Another user has this email." },
  org_exists: { status: 409, message: "Organization already exists", meaning: "An organization with this id exists." },
  too_many_webhooks: { status: 409, message: "Too many webhook endpoints", meaning: "The caller has registered as many endpoints as allowed." },
  principal_type_mismatch: { status: 409, message: "Principal type mismatch", meaning: "The principal exists with another type." },
  run_exists: { status: 409, message: "A run with this id already exists", meaning: "POST /runs with a runId already started in the conversation." },
  run_paused: { status: 409, message: "The run is paused", meaning: "The run is paused or preempted: no message goes into it until it resumes." },
  run_ended: { status: 409, message: "The run has ended", meaning: "The run completed, failed or was cancelled: nothing more goes into it." },
  not_run_owner: { status: 409, message: "You do not own this run", meaning: "Only the run's owner posts into it (after a route or handoff: the new owner)." },
  not_streaming: { status: 409, message: "The message is not a streaming message", meaning: "Append or finish on a message sent without `streaming: true`." },
  stream_closed: {
    status: 409,
    message: "The stream has ended",
    meaning: "Append or finish on a streaming message already complete, cancelled or interrupted; the body carries `stream_state`.",
  },
  too_many_streams: {
    status: 409,
    message: "Too many open streams on this connection",
    meaning: "A connection holds at most STREAM_MAX_PER_CONNECTION open streams; finish one first.",
  },
  invalid_transition: {
    status: 409,
    message: "The run cannot take this event in its state",
    meaning: "A stream.* event the run's current state does not allow; the body carries `state`.",
  },

  // 413, 429
  too_large: { status: 413, message: "Too large", meaning: "A body, message content or metadata exceeds its limit." },
  headers_too_large: { status: 431, message: "Request headers too large", meaning: "Request headers over 12 KiB (above 16 KiB Bun answers 431 itself)." },
  rate_limited: { status: 429, message: "Too many requests", meaning: "Retry after the advertised delay (Retry-After header, or the message)." },

  // 5xx: the server or what it depends on
  internal_error: { status: 500, message: "Internal server error", meaning: "A bug; the server logged it with the request id." },
  identity_unavailable: { status: 502, message: "The identity service is unavailable", meaning: "IDENTITY_URL did not answer in time." },
  stream_unreachable: {
    status: 503,
    message: "The instance holding the stream did not answer",
    meaning: "An append or finish reached an instance that does not hold the stream, and its holder did not answer in time (it may be gone: the stream then ends as interrupted); retry.",
  },
  database_unavailable: { status: 503, message: "Database unavailable", meaning: "PostgreSQL cannot be reached; retry later." },
  shutting_down: { status: 503, message: "The server is shutting down", meaning: "Reconnect (to another instance) and retry." },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class AppError extends Error {
  readonly status: number;

  /** Extra fields of the answer beside `error` and `code` (e.g. a run's `state` on invalid_transition). */
  details?: Record<string, unknown>;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    /** Extra response headers, e.g. Retry-After on 429. */
    readonly headers?: Record<string, string>,
  ) {
    super(message ?? ERROR_CATALOGUE[code].message);
    this.name = "AppError";
    this.status = ERROR_CATALOGUE[code].status;
  }

  toBody(): { error: string; code: string } {
    return { ...this.details, error: this.message, code: this.code };
  }

  with(details: Record<string, unknown>): this {
    this.details = { ...this.details, ...details };
    return this;
  }
}

type ErrorFactories = { readonly [C in ErrorCode]: (message?: string, headers?: Record<string, string>) => AppError };

/** `throw fail.not_participant()`: one factory per catalogue entry, so a throw site names its entry. */
export const fail: ErrorFactories = Object.fromEntries(
  (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).map((code) => [code, (message?: string, headers?: Record<string, string>) => new AppError(code, message, headers)]),
) as unknown as ErrorFactories;

/** "X not found" with the 404 code: what a caller may not see does not exist for it. */
export const notFound = (what: string) => fail.not_found(`${what} not found`);

/** 429 with Retry-After in whole seconds (at least one). */
export const rateLimited = (retryAfterSeconds: number, message?: string) =>
  fail.rate_limited(message, { "retry-after": String(Math.max(1, Math.ceil(retryAfterSeconds))) });

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code);
}
