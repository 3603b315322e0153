/**
 * The OpenAPI document, generated from the routes' own schemas by @elysiajs/openapi and then completed
 * with what every operation shares and the route schemas cannot say: the error answers, which operations
 * need credentials, the paging headers of lists, and named component schemas for client generators.
 */
import { toOpenAPISchema } from "@elysiajs/openapi";
import type { AnyElysia } from "elysia";
import { isPublicPath } from "../../http/context";
import { ErrorResponse } from "../shared-models";

type Json = Record<string, any>;

export const OPENAPI_VERSION = "3.1.0";

const SECURITY_SCHEMES = {
  bearer: { type: "http", scheme: "bearer", description: "Session token from POST /api/auth/login, or an API key" },
  apiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "API key created by an operator" },
  cookie: { type: "apiKey", in: "cookie", name: "symbia_session", description: "Session cookie set by POST /api/auth/login" },
};
const ANY_CREDENTIAL = [{ bearer: [] }, { apiKey: [] }, { cookie: [] }];

/** The error answers, each a named response of the `{error, code}` schema. */
const ERRORS: Record<string, { name: string; description: string }> = {
  "400": { name: "BadRequest", description: "Invalid input (body, query, or a scope header)" },
  "401": { name: "Unauthorized", description: "No valid credentials" },
  "403": { name: "Forbidden", description: "Not allowed for this principal (or not a member of the organization named by X-Org-Id)" },
  "404": { name: "NotFound", description: "No such resource (also for a malformed id)" },
  "409": { name: "Conflict", description: "Conflicts with the current state" },
  "413": { name: "TooLarge", description: "Body, content or metadata too large" },
  "429": { name: "RateLimited", description: "Too many requests; see Retry-After" },
  "502": { name: "IdentityUnavailable", description: "The remote Identity service did not answer (IDENTITY_URL set)" },
  "503": { name: "Unavailable", description: "Database unavailable" },
};

/** Statuses beyond the common ones, per operation (`METHOD path` as in the document). */
const EXTRA_ERRORS: Record<string, string[]> = {
  "post /api/auth/login": ["401", "429", "502"],
  "post /api/auth/logout": ["502"],
  "post /api/conversations/{id}/messages": ["409", "413"],
  "patch /api/conversations/{id}/messages/{mid}": ["409", "413"],
  "post /api/conversations/{id}/control": ["413"],
  "post /api/conversations/{id}/participants": ["409"],
  "post /api/conversations/{id}/join": ["409"],
  "patch /api/conversations/{id}/participants/{userId}": ["409"],
  "post /api/admin/conversations/{id}/participants": ["409"],
};

/** Lists answer one page at a time, with these headers to go on. */
const PAGED = new Set([
  "get /api/conversations",
  "get /api/admin/conversations",
  "get /api/admin/users/{userId}/conversations",
  "get /api/conversations/{id}/messages",
]);
const PAGE_HEADERS = {
  Link: {
    description: 'The next page, as `<url>; rel="next"` (RFC 8288); absent on the last page',
    schema: { type: "string" },
  },
  "X-Total-Count": {
    description: "Items in the whole list, all pages together (not on messages, which page by sequence)",
    schema: { type: "integer" },
  },
};

const TAGS = [
  { name: "system", description: "Health, bootstrap and documentation" },
  { name: "auth", description: "Login, logout and session" },
  { name: "conversations", description: "Conversations the caller takes part in" },
  { name: "participants", description: "Joining, leaving and managing participants" },
  { name: "messages", description: "Sending, listing, editing and deleting messages" },
  { name: "control", description: "Control events (stream.pause, stream.handoff, …)" },
  { name: "admin", description: "System administration (messaging:admin)" },
];

/**
 * Replaces every schema that carries a `title` by a reference to components.schemas, children first, so
 * that a generated client names Conversation, Message, … instead of repeating anonymous shapes.
 */
function liftTitledSchemas(node: unknown, components: Json): unknown {
  if (Array.isArray(node)) return node.map((item) => liftTitledSchemas(item, components));
  if (node === null || typeof node !== "object") return node;
  const copy: Json = {};
  for (const [key, value] of Object.entries(node)) copy[key] = liftTitledSchemas(value, components);
  if (typeof copy.title === "string" && (copy.type === "object" || copy.type === "array" || copy.allOf || copy.anyOf)) {
    const { title, ...schema } = copy;
    components[title] ??= schema;
    return { $ref: `#/components/schemas/${title}` };
  }
  return copy;
}

/**
 * Request bodies. The generator leaves a body's content empty when the route parses it with a function
 * of its own, as every JSON route here does (jsonBodyOnly); the body schema itself is on the route.
 */
function addRequestBodies(app: AnyElysia, paths: Json): void {
  for (const route of app.routes) {
    const body = (route.hooks as Json | undefined)?.body;
    if (!body || typeof body !== "object") continue;
    const path = route.path.replace(/:([^/]+)/g, "{$1}");
    const operation = paths[path]?.[route.method.toLowerCase()];
    if (!operation) continue;
    operation.requestBody = {
      required: true,
      content: { "application/json": { schema: JSON.parse(JSON.stringify(body)) } },
    };
  }
}

/**
 * `Metadata` is written as `Record & Object({})` so that Elysia checks it as sent (see shared-models);
 * to a client it is one free-form object.
 */
function mergeEmptyObjectIntersections(node: Json): Json {
  if (!Array.isArray(node.allOf)) return node;
  const rest = node.allOf.filter((s: Json) => !(s.type === "object" && s.properties && Object.keys(s.properties).length === 0 && !s.required));
  if (rest.length !== 1 || rest.length === node.allOf.length) return node;
  const { allOf, ...outer } = node;
  return { ...rest[0], ...outer };
}

/**
 * Elysia's `t.Integer` and `t.Numeric` also read numbers written as strings (as query strings are); an
 * answer holds the number, a query parameter is one, and a client should be told so.
 */
function collapseCoercedIntegers(node: Json): Json {
  if (!Array.isArray(node.anyOf) || node.anyOf.length !== 2) return node;
  const numeric = node.anyOf.find((s: Json) => s.type === "integer" || s.type === "number");
  const text = node.anyOf.find((s: Json) => s.type === "string" && (s.format === "integer" || s.format === "numeric"));
  if (!numeric || !text) return node;
  const { anyOf, ...outer } = node;
  const merged: Json = { ...outer, ...numeric };
  // Whole numbers (`multipleOf: 1`, as QueryInteger says) are integers to a client.
  if (merged.multipleOf === 1) {
    delete merged.multipleOf;
    merged.type = "integer";
  }
  return merged;
}

/** Drops what TypeBox marks for itself (Kind symbols are not enumerable; `format: storable-text` is ours). */
function cleanSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(cleanSchema);
  if (node === null || typeof node !== "object") return node;
  const copy: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "format" && value === "storable-text") continue;
    // OpenAPI 3.1 says null with `type: [..., "null"]`; the 3.0 keyword alongside it is invalid there.
    if (key === "nullable") continue;
    copy[key] = cleanSchema(value);
  }
  return collapseCoercedIntegers(mergeEmptyObjectIntersections(copy));
}

function completeOperation(key: string, path: string, operation: Json): void {
  const isPublic = isPublicPath(path);
  operation.security = isPublic ? [] : ANY_CREDENTIAL;
  const responses: Json = (operation.responses ??= {});
  for (const [status, response] of Object.entries(responses)) {
    if (status === "204") responses[status] = { description: "No content" };
    else if (response && typeof response === "object" && !response.description) response.description = "Success";
  }
  // Routes that answer no body say so with no schema: their success is 204.
  if (!Object.keys(responses).some((status) => /^[12]/.test(status))) responses["204"] = { description: "No content" };
  const hasBody = key.startsWith("post ") || key.startsWith("patch ");
  const statuses = [
    "400",
    "403",
    "404",
    "503",
    ...(isPublic ? [] : ["401", "502"]),
    // The gate refuses any body over MAX_BODY_BYTES before reading it.
    ...(hasBody ? ["413"] : []),
    ...(EXTRA_ERRORS[key] ?? []),
  ];
  for (const status of statuses) {
    const existing = responses[status];
    // A route's own schema for an error status (login's 401, 429) is the shared one; keep it a reference.
    if (!existing || existing.content?.["application/json"]?.schema?.$ref === "#/components/schemas/Error") {
      responses[status] = { $ref: `#/components/responses/${ERRORS[status].name}` };
    }
  }
  if (PAGED.has(key)) {
    for (const status of ["200"]) if (responses[status]) responses[status].headers = { ...PAGE_HEADERS };
  }
  operation.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
}

export function buildOpenApiDocument(app: AnyElysia, info: { title: string; version: string; description: string }, serverUrl: string): Json {
  const generated = toOpenAPISchema(app, undefined, undefined, undefined, OPENAPI_VERSION) as Json;
  addRequestBodies(app, generated.paths);
  const schemas: Json = {};
  const paths = liftTitledSchemas(cleanSchema(generated.paths), schemas) as Json;
  // The WebSocket is an upgrade of a GET; OpenAPI has no method of its own for it.
  const socket = paths["/api/ws"]?.ws;
  if (socket) {
    delete paths["/api/ws"].ws;
    paths["/api/ws"].get = {
      ...socket,
      description: "Upgrades to the WebSocket of docs/realtime.md. Browsers may pass `?token=` or `?apiKey=`; with the session cookie the Origin must be this server's or one of ALLOWED_ORIGINS.",
      responses: { "101": { description: "Switching protocols" } },
    };
  }
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(item as Json)) completeOperation(`${method} ${path}`, path, operation as Json);
  }
  const errorSchema = liftTitledSchemas(cleanSchema(ErrorResponse), schemas);
  const responses = Object.fromEntries(
    Object.values(ERRORS).map(({ name, description }) => [name, { description, content: { "application/json": { schema: errorSchema } } }]),
  );
  return {
    openapi: OPENAPI_VERSION,
    info: { ...info, license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" } },
    servers: [{ url: serverUrl }],
    tags: TAGS,
    security: ANY_CREDENTIAL,
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
      responses,
      securitySchemes: SECURITY_SCHEMES,
    },
  };
}
