/**
 * TypeBox pieces used by several modules' request schemas (they are also the OpenAPI document).
 */
import { t } from "elysia";
import { FormatRegistry, type StringOptions } from "@sinclair/typebox";
import { isStorableText } from "../domain/limits";
import { fail } from "../core/errors";

/**
 * PostgreSQL text and jsonb cannot hold U+0000, and jsonb refuses unpaired UTF-16 surrogates. Strings that
 * reach the database refuse both here, as invalid input (400; 404 in a path), instead of failing there.
 */
FormatRegistry.Has("storable-text") || FormatRegistry.Set("storable-text", isStorableText);
export const Text = (options: StringOptions = {}) => t.String({ format: "storable-text", ...options });

export const Uuid = t.String({ format: "uuid" });
/** Principal ids are opaque strings: users' UUIDs, agents such as `assistant:support`, services. */
export const PrincipalId = Text({ minLength: 1, maxLength: 255 });
export const OrgId = Text({ minLength: 1, maxLength: 255 });
export const ParticipantType = t.Union([t.Literal("user"), t.Literal("agent"), t.Literal("service"), t.Literal("bot")]);
/**
 * A JSON object. Written as an intersection on purpose: Elysia's normaliser rebuilds a plain `t.Record`
 * from whatever it is given before checking it, so `"abc"` or `[1]` would pass as `{"0": ...}`; an
 * intersection is checked as sent, and arrays, strings and numbers are refused.
 */
export const Metadata = t.Intersect([t.Record(t.String(), t.Unknown()), t.Object({})], {
  description: "Free-form JSON object",
});

/** Whole numbers in a query string; fractions and values beyond what the database takes are refused. */
export const QueryInteger = (minimum: number, maximum: number) => t.Numeric({ minimum, maximum, multipleOf: 1 });
export const PageOffset = QueryInteger(0, 1_000_000_000);

/** Message and run priority, lowest first. */
export const Priority = t.Union([t.Literal("low"), t.Literal("normal"), t.Literal("high"), t.Literal("critical")]);
/**
 * Transform hook of routes with QueryInteger parameters, from their query schema: only plain decimal
 * digits within the bounds reach the schema, and a refusal names the parameter (a failed `t.Numeric`
 * check loses its name on the way). `t.Numeric` alone converts with Number(), which also reads `0x10`,
 * ` 5`, `1e2` or `5.0`; a client that sends those has a bug worth hearing about.
 */
export function queryIntegers(schema: { properties: Record<string, unknown> }) {
  const bounds: [string, number, number][] = [];
  for (const [name, property] of Object.entries(schema.properties)) {
    const p = property as { multipleOf?: number; minimum?: number; maximum?: number };
    if (p.multipleOf === 1 && p.minimum !== undefined && p.maximum !== undefined) bounds.push([name, p.minimum, p.maximum]);
  }
  return ({ query }: { query: Record<string, unknown> }) => {
    for (const [name, minimum, maximum] of bounds) {
      const value = query[name];
      if (value === undefined) continue;
      if (typeof value !== "string" || !/^-?\d{1,16}$/.test(value) || Number(value) < minimum || Number(value) > maximum) {
        throw fail.invalid_input(`${name} must be a whole number from ${minimum} to ${maximum}`);
      }
    }
  };
}


export const ConversationParams = t.Object({ id: Uuid });
export const ErrorBody = t.Object({ error: t.String(), code: t.String() });

/** Deeper than any valid body (metadata stops at 64 levels); validating deeper values overflows the stack. */
const MAX_BODY_DEPTH = 100;

function nestsDeeperThan(value: unknown, limit: number): boolean {
  const pending: [unknown, number][] = [[value, 1]];
  while (pending.length > 0) {
    const [item, depth] = pending.pop()!;
    if (item === null || typeof item !== "object") continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (child !== null && typeof child === "object") pending.push([child, depth + 1]);
    }
  }
  return false;
}

/**
 * Parse hook of the JSON-bodied routes: JSON in (docs/api.md, Conventions), and always an object. Without it
 * Elysia would also read form and multipart bodies into the same fields, and its normaliser would turn a
 * body of `[]` or `"x"` into `{}`, which a route whose fields are all optional (PATCH) accepts.
 * Media types are case-insensitive; `+json` suffixes count. What is thrown here is answered as
 * 400 invalid_json.
 */
export async function jsonBodyOnly({ request }: { request: Request }, contentType: string): Promise<unknown> {
  const text = await request.text();
  // No body at all (DELETE, POST /join) passes whatever the headers say; the route's schema decides.
  if (text === "") return undefined;
  if (!/^application\/(?:[\w.-]+\+)?json$/i.test(contentType.trim())) {
    throw fail.unsupported_media_type("Request body must be JSON (Content-Type: application/json)");
  }
  const body: unknown = JSON.parse(text);
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw fail.invalid_input("Request body must be a JSON object");
  if (nestsDeeperThan(body, MAX_BODY_DEPTH)) throw fail.invalid_input(`Request body nests deeper than ${MAX_BODY_DEPTH} levels`);
  return body;
}

// ---------------------------------------------------------------- response schemas
//
// The resources of src/domain/resources.ts as schemas. Each has a `title`: the OpenAPI document lifts
// titled schemas into components.schemas, so generated clients get named types. Elysia checks answers
// against them, which keeps the document honest.

const DateTime = t.String({ format: "date-time" });
const NullableString = t.Nullable(t.String());
/** jsonb objects as stored; free-form. */
const JsonObject = t.Record(t.String(), t.Unknown(), { description: "Free-form JSON object" });
const ParticipantTypeOut = t.Union([t.Literal("user"), t.Literal("agent"), t.Literal("service"), t.Literal("bot")]);

export const ErrorResponse = t.Object(
  { error: t.String({ description: "Human-readable message" }), code: t.String({ description: "Machine-readable code" }) },
  { title: "Error", description: "Error" },
);

export const Conversation = t.Object(
  {
    id: Uuid,
    type: t.Union([t.Literal("private"), t.Literal("group")]),
    name: NullableString,
    description: NullableString,
    org_id: NullableString,
    created_by: t.String(),
    created_at: DateTime,
    updated_at: DateTime,
    metadata: JsonObject,
  },
  { title: "Conversation", description: "A conversation" },
);

export const Participant = t.Object(
  {
    id: Uuid,
    conversation_id: Uuid,
    user_id: t.String(),
    user_type: ParticipantTypeOut,
    role: t.Union([t.Literal("owner"), t.Literal("admin"), t.Literal("member")]),
    joined_at: DateTime,
    last_read_at: t.Nullable(DateTime),
  },
  { title: "Participant", description: "A participant of a conversation" },
);

export const ConversationWithParticipants = t.Composite([Conversation, t.Object({ participants: t.Array(Participant) })], {
  title: "ConversationWithParticipants",
  description: "A conversation with its participants",
});

export const Message = t.Object(
  {
    id: Uuid,
    conversation_id: Uuid,
    sender_id: t.String(),
    sender_type: ParticipantTypeOut,
    content: t.String(),
    content_type: t.String(),
    reply_to: t.Nullable(Uuid),
    org_id: NullableString,
    run_id: NullableString,
    trace_id: NullableString,
    sequence: t.Integer({ minimum: 1 }),
    priority: t.Union([t.Literal("low"), t.Literal("normal"), t.Literal("high"), t.Literal("critical")]),
    interruptible: t.Boolean(),
    preempted_by: t.Nullable(Uuid),
    created_at: DateTime,
    updated_at: t.Nullable(DateTime),
    deleted_at: t.Nullable(DateTime),
    metadata: JsonObject,
    version: t.Integer({ minimum: 1, description: "1 + the number of edits" }),
    data_class: NullableString,
    policy_ref: NullableString,
    stream_state: t.Nullable(
      t.Union([t.Literal("streaming"), t.Literal("complete"), t.Literal("cancelled"), t.Literal("interrupted")], {
        description: "null for an ordinary message; a streaming message's state (docs/streaming.md)",
      }),
    ),
  },
  { title: "Message", description: "A message" },
);

export const RunState = t.Union(
  [t.Literal("active"), t.Literal("paused"), t.Literal("preempted"), t.Literal("completed"), t.Literal("failed"), t.Literal("cancelled")],
  { description: "completed, failed and cancelled are ended states" },
);

export const Run = t.Object(
  {
    id: t.String({ description: "1..255 characters, unique in its conversation" }),
    conversation_id: Uuid,
    owner_id: t.String(),
    owner_type: ParticipantTypeOut,
    state: RunState,
    priority: t.Union([t.Literal("low"), t.Literal("normal"), t.Literal("high"), t.Literal("critical")]),
    interruptible: t.Boolean(),
    started_at: DateTime,
    updated_at: DateTime,
    ended_at: t.Nullable(DateTime),
    end_reason: NullableString,
    preempted_by: t.Nullable(Uuid),
    metadata: JsonObject,
  },
  { title: "Run", description: "An agent's response stream in a conversation (docs/runs.md)" },
);

export const RunTransition = t.Object(
  {
    event: t.String(),
    from: t.Nullable(RunState),
    to: t.Nullable(RunState),
    by: t.String({ description: "who sent the control event" }),
    at: DateTime,
    sequence: t.Integer({ minimum: 1 }),
    reason: t.Optional(t.String()),
  },
  { title: "RunTransition", description: "A stored control message that changed the run" },
);

export const RunWithTransitions = t.Composite([Run, t.Object({ transitions: t.Array(RunTransition) })], {
  title: "RunWithTransitions",
  description: "A run with its transitions, in sequence",
});

export const RunList = t.Array(Run, { description: "Runs, newest first" });

export const ConversationList = t.Array(Conversation, { description: "Conversations, newest activity first" });

export const ConversationSummary = t.Composite(
  [
    Conversation,
    t.Object({
      last_read_at: t.Nullable(DateTime),
      unread_count: t.Integer({ minimum: 0, maximum: 100, description: "Others' messages since last_read_at, counted up to 100" }),
    }),
  ],
  { title: "ConversationSummary", description: "A conversation as its participant lists it" },
);

export const ConversationSummaryList = t.Array(ConversationSummary, { description: "Conversations, newest activity first" });

