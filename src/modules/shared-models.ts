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
