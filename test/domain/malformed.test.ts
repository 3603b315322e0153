/**
 * Malformed input, table-driven, across every messaging and admin endpoint: bad ids in every path
 * position, wrongly typed fields, huge strings, NUL characters and unpaired surrogates, nulls, arrays and
 * objects in the wrong places, numbers as strings, empty and non-JSON bodies, deep nesting, bad query
 * parameters. Each answer must be a 4xx with exactly `{error, code}` — never a 500 — and nothing refused
 * may leave a trace. Well-formed unicode (emoji, right-to-left text) must round-trip unchanged.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { UNKNOWN_ID, createConversation, expectStatus, listMessages, participantsOf, sendMessage } from "./fixtures";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
/** A super admin who owns the conversation and sent the message: every permission check lets it through to validation. */
let caller: TestPrincipal;
let member: TestPrincipal;
let ids: { id: string; mid: string; userId: string };

beforeAll(async () => {
  t = await startTestServer();
  caller = await t.principal({ superAdmin: true });
  member = await t.principal();
  const conversation = await createConversation(t, caller, { members: [member], metadata: { seed: true } });
  const message = await sendMessage(t, caller, conversation.id, { content: "seed" });
  ids = { id: conversation.id, mid: message.id, userId: member.id };
});
afterAll(() => t.stop());

// ---------------------------------------------------------------- the table

type Kind = "string" | "optionalString" | "nullableString" | "uuid" | "metadata" | "boolean" | "enum" | "participants" | "target";

interface Endpoint {
  method: string;
  /** `:id`, `:mid` and `:userId` are replaced by real ids, or by bad ones. */
  path: string;
  /** A valid body; its fields are replaced one at a time by wrong values. */
  body?: Record<string, unknown>;
  fields?: Record<string, Kind>;
  query?: Record<string, string[]>;
}

const LIMITS = ["abc", "1.5", "-1", "0", "99999", "1e400", "", "%00", "1,2", "Infinity", "NaN", "[1]"];
const OFFSETS = ["-1", "x", "0.5", "1.5", "1e20", "1e400", "-1e400", "Infinity", "NaN", "", "%00", "0x10", "1,2", "[1]", "1000000001"];
const CURSORS = ["abc", "0000-01-01", "2024-13-45", "99999999999", "%00", "-5", "2024-01-01T10:00:00+99:99", "1e3", "[]"];
const ORG_IDS = ["%00", "a%00b", "x".repeat(300), ""];

const endpoints: Endpoint[] = [
  { method: "GET", path: "/api/conversations", query: { orgId: ORG_IDS, limit: LIMITS, offset: OFFSETS } },
  {
    method: "POST",
    path: "/api/conversations",
    body: { type: "group", name: "n", description: "d", orgId: "o", metadata: {}, participants: [] },
    fields: { type: "enum", name: "optionalString", description: "optionalString", orgId: "optionalString", metadata: "metadata", participants: "participants" },
  },
  { method: "GET", path: "/api/conversations/:id" },
  {
    method: "PATCH",
    path: "/api/conversations/:id",
    body: { name: "n", description: "d", metadata: {} },
    fields: { name: "optionalString", description: "nullableString", metadata: "metadata" },
  },
  { method: "DELETE", path: "/api/conversations/:id" },
  { method: "GET", path: "/api/conversations/:id/messages", query: { limit: LIMITS, before: CURSORS, after: CURSORS } },
  {
    method: "POST",
    path: "/api/conversations/:id/messages",
    body: {
      id: crypto.randomUUID(),
      content: "c",
      contentType: "text/plain",
      replyTo: "<mid>",
      metadata: {},
      runId: "r",
      traceId: "t",
      priority: "low",
      interruptible: true,
      preemptedBy: "<mid>",
    },
    fields: {
      id: "uuid",
      content: "string",
      contentType: "optionalString",
      replyTo: "uuid",
      metadata: "metadata",
      runId: "optionalString",
      traceId: "optionalString",
      priority: "enum",
      interruptible: "boolean",
      preemptedBy: "uuid",
    },
  },
  {
    method: "PATCH",
    path: "/api/conversations/:id/messages/:mid",
    body: { content: "c", contentType: "text/plain" },
    fields: { content: "string", contentType: "optionalString" },
  },
  { method: "DELETE", path: "/api/conversations/:id/messages/:mid" },
  { method: "GET", path: "/api/conversations/:id/messages/:mid/history" },
  {
    method: "POST",
    path: "/api/conversations/:id/control",
    body: { event: "stream.pause", target: "someone", reason: "r", preemptedBy: "<mid>", runId: "r", traceId: "t", metadata: {} },
    fields: { event: "enum", target: "target", reason: "optionalString", preemptedBy: "uuid", runId: "optionalString", traceId: "optionalString", metadata: "metadata" },
  },
  { method: "POST", path: "/api/conversations/:id/join" },
  { method: "POST", path: "/api/conversations/:id/leave" },
  {
    method: "POST",
    path: "/api/conversations/:id/participants",
    body: { userId: "u", userType: "agent" },
    fields: { userId: "string", userType: "enum" },
  },
  { method: "DELETE", path: "/api/conversations/:id/participants/:userId" },
  { method: "PATCH", path: "/api/conversations/:id/participants/:userId", body: { role: "admin" }, fields: { role: "enum" } },
  { method: "GET", path: "/api/admin/conversations", query: { orgId: ORG_IDS, type: ["channel", "", "GROUP", "%00"], limit: LIMITS, offset: OFFSETS } },
  { method: "GET", path: "/api/admin/conversations/:id" },
  { method: "DELETE", path: "/api/admin/conversations/:id" },
  { method: "GET", path: "/api/admin/users/:userId/conversations", query: { orgId: ORG_IDS, limit: LIMITS, offset: OFFSETS } },
  {
    method: "POST",
    path: "/api/admin/conversations/:id/participants",
    body: { userId: "u", userType: "user", role: "member" },
    fields: { userId: "string", userType: "enum", role: "enum" },
  },
  { method: "DELETE", path: "/api/admin/conversations/:id/participants/:userId" },
  { method: "GET", path: "/api/admin/stats", query: { orgId: ORG_IDS } },
];

/** Ids that are not UUIDs (raw path text: percent-escapes are sent as written). */
const BAD_UUIDS = [
  "not-a-uuid",
  "123",
  "00000000-0000-0000-0000-00000000000g",
  "00000000000000000000000000000000x",
  "%00",
  "a%00b",
  "%E0%A4%A",
  "%ED%A0%80",
  "'%20OR%201=1--",
  "x".repeat(300),
  "%F0%9F%98%80",
  "%D9%85%D8%B1%D8%AD%D8%A8%D8%A7",
  "..%2F..",
  "null",
  "undefined",
  "-1",
  "1e9",
];
/** Principal ids are opaque strings; these are the ones no principal can have. */
const BAD_PRINCIPAL_IDS = ["%00", "a%00b", "x".repeat(256)];

const deep = (levels: number): unknown => {
  let value: unknown = { leaf: true };
  for (let i = 0; i < levels; i++) value = { nested: value };
  return value;
};
const HUGE = "x".repeat(100_000);
/** A wrongly typed value nested far deeper than any valid body. */
const DEEP_ARRAY = JSON.parse("[".repeat(5_000) + "]".repeat(5_000));

const WRONG_VALUES: Record<Kind, unknown[]> = {
  string: [null, 42, 0, true, [], {}, ["a"], { a: 1 }, DEEP_ARRAY, HUGE, "a\u0000b", "\u0000", "lone \ud800 surrogate", "\udc00"],
  optionalString: [null, 42, true, [], {}, ["a"], { a: 1 }, DEEP_ARRAY, HUGE, "a\u0000b", "\ud83d"],
  nullableString: [42, true, [], {}, ["a"], HUGE, "a\u0000b", "\ud800"],
  uuid: [null, 42, DEEP_ARRAY, "", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", [], {}, "\u0000", UNKNOWN_ID.slice(0, 35)],
  metadata: [
    null,
    42,
    "s",
    "{}",
    true,
    [],
    [1],
    [{ a: 1 }],
    deep(65),
    deep(5_000),
    { "key\u0000": 1 },
    { a: "\u0000" },
    { a: ["ok", "\ud800"] },
    { "\udfff": 1 },
    { big: "x".repeat(70_000) },
  ],
  boolean: ["true", "false", 1, 0, null, [], {}],
  enum: ["bogus", "", 1, null, ["low"], {}, true, "\u0000", DEEP_ARRAY],
  participants: [{}, "a", 42, null, [1], ["a"], [null], [{}], [{ userId: 1 }], [{ userId: "" }], [{ userId: "a", userType: "robot" }], [{ userId: "a\u0000" }]],
  target: [5, true, null, [], ["a"], {}, { principalId: 5 }, { principalId: "" }, { principalId: "a", principalType: "robot" }, "\u0000", ""],
};

/** Whole bodies that are not a JSON object, sent as application/json. */
const RAW_JSON_BODIES = [
  "",
  "null",
  "[]",
  '"str"',
  "42",
  "true",
  "{",
  '{"content":',
  "[1,2",
  "{'a':1}",
  "\u0000",
  "{}garbage",
  "[".repeat(10_000) + "]".repeat(10_000),
  '{"a":' + "[".repeat(5_000) + "]".repeat(5_000) + "}",
];

/** A body whose fields would be valid everywhere, in formats other than JSON: they must be refused. */
const VALID_AS_FORM = { content: "hi", type: "group", name: "n", userId: "u", role: "member", event: "stream.pause" };

// ---------------------------------------------------------------- running it

interface Call {
  method: string;
  path: string;
  body?: string | FormData | Uint8Array;
  contentType?: string;
  auth?: boolean;
}

async function call({ method, path, body, contentType, auth = true }: Call) {
  const headers: Record<string, string> = auth ? { ...caller.headers } : {};
  if (contentType) headers["content-type"] = contentType;
  const response = await fetch(t.url + path, { method, headers, body });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, contentType: response.headers.get("content-type") ?? "", text, json };
}

/** Empty when the answer is a 4xx carrying exactly `{error, code}`; otherwise what was wrong. */
function problemWith(res: Awaited<ReturnType<typeof call>>, allowed?: number[]): string | undefined {
  if (allowed ? !allowed.includes(res.status) : res.status < 400 || res.status > 499) return `status ${res.status}: ${res.text.slice(0, 160)}`;
  if (!res.contentType.startsWith("application/json")) return `content-type ${res.contentType}`;
  const body = res.json as Record<string, unknown> | undefined;
  if (!body || typeof body.error !== "string" || typeof body.code !== "string" || Object.keys(body).length !== 2) {
    return `body ${res.text.slice(0, 160)}`;
  }
  return undefined;
}

const resolvePath = (path: string, overrides: Partial<typeof ids> = {}) =>
  path
    .replace(":id", overrides.id ?? ids.id)
    .replace(":mid", overrides.mid ?? ids.mid)
    .replace(":userId", overrides.userId ?? ids.userId);

const validBody = (endpoint: Endpoint) => JSON.parse(JSON.stringify(endpoint.body ?? {}).replaceAll("<mid>", ids.mid));

const label = (value: unknown) => {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
};

async function collect(cases: { label: string; call: Call; allowed?: number[] }[]): Promise<string[]> {
  const problems: string[] = [];
  for (const c of cases) {
    const problem = problemWith(await call(c.call), c.allowed);
    if (problem) problems.push(`${c.label} → ${problem}`);
  }
  return problems;
}

const name = (e: Endpoint) => `${e.method} ${e.path}`;

describe("malformed ids in every path position", () => {
  const withParams = endpoints.filter((e) => e.path.includes(":"));
  test.each(withParams.map((e) => [name(e), e] as const))("%s", async (_name, endpoint) => {
    const cases = [];
    for (const param of ["id", "mid", "userId"] as const) {
      if (!endpoint.path.includes(`:${param}`)) continue;
      const values = param === "userId" ? BAD_PRINCIPAL_IDS : [...BAD_UUIDS, UNKNOWN_ID];
      for (const value of values) {
        const path = resolvePath(endpoint.path, { [param]: value });
        cases.push({
          label: `${param}=${label(value)}`,
          call: { method: endpoint.method, path, body: endpoint.body ? JSON.stringify(validBody(endpoint)) : undefined, contentType: endpoint.body ? "application/json" : undefined },
          // A malformed id names nothing: 404 (an unknown but well-formed one too).
          allowed: [404],
        });
      }
    }
    expect(await collect(cases)).toEqual([]);
  });
});

describe("wrongly typed, oversized and unstorable fields", () => {
  const withBody = endpoints.filter((e) => e.fields);
  test.each(withBody.map((e) => [name(e), e] as const))("%s", async (_name, endpoint) => {
    const cases = [];
    for (const [field, kind] of Object.entries(endpoint.fields!)) {
      for (const value of WRONG_VALUES[kind]) {
        const body = { ...validBody(endpoint), [field]: value };
        cases.push({
          label: `${field}=${label(value)}`,
          call: { method: endpoint.method, path: resolvePath(endpoint.path), body: JSON.stringify(body), contentType: "application/json" },
        });
      }
    }
    expect(await collect(cases)).toEqual([]);
  });
});

describe("bodies that are not a JSON object", () => {
  const withBody = endpoints.filter((e) => e.body);
  test.each(withBody.map((e) => [name(e), e] as const))("%s", async (_name, endpoint) => {
    const path = resolvePath(endpoint.path);
    const cases: { label: string; call: Call }[] = RAW_JSON_BODIES.map((body) => ({
      label: `json ${label(body)}`,
      call: { method: endpoint.method, path, body, contentType: "application/json" },
    }));
    const form = new URLSearchParams(VALID_AS_FORM).toString();
    const multipart = () => {
      const data = new FormData();
      for (const [k, v] of Object.entries(VALID_AS_FORM)) data.append(k, v);
      return data;
    };
    cases.push(
      { label: "no content type", call: { method: endpoint.method, path, body: new TextEncoder().encode(JSON.stringify(validBody(endpoint))) } },
      { label: "text/plain JSON", call: { method: endpoint.method, path, body: JSON.stringify(validBody(endpoint)), contentType: "text/plain" } },
      { label: "text/plain", call: { method: endpoint.method, path, body: "hello", contentType: "text/plain" } },
      { label: "form", call: { method: endpoint.method, path, body: form, contentType: "application/x-www-form-urlencoded" } },
      { label: "multipart", call: { method: endpoint.method, path, body: multipart() } },
      { label: "xml", call: { method: endpoint.method, path, body: "<content>hi</content>", contentType: "application/xml" } },
      { label: "octet-stream", call: { method: endpoint.method, path, body: new Uint8Array([0, 1, 2, 255]), contentType: "application/octet-stream" } },
      { label: "json with bad charset bytes", call: { method: endpoint.method, path, body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), contentType: "application/json" } },
      { label: "over the body limit", call: { method: endpoint.method, path, body: JSON.stringify({ pad: "x".repeat(t.config.maxBodyBytes) }), contentType: "application/json" } },
    );
    expect(await collect(cases)).toEqual([]);
  });
});

describe("malformed query parameters", () => {
  const withQuery = endpoints.filter((e) => e.query);
  test.each(withQuery.map((e) => [name(e), e] as const))("%s", async (_name, endpoint) => {
    const cases = [];
    for (const [param, values] of Object.entries(endpoint.query!)) {
      for (const value of values) {
        cases.push({ label: `${param}=${label(value)}`, call: { method: endpoint.method, path: `${resolvePath(endpoint.path)}?${param}=${value}` } });
      }
    }
    expect(await collect(cases)).toEqual([]);
  });
});

describe("authentication comes before validation", () => {
  test("every endpoint answers 401 to a malformed request without credentials", async () => {
    const cases = endpoints.map((endpoint) => ({
      label: name(endpoint),
      call: {
        method: endpoint.method,
        path: resolvePath(endpoint.path, { id: "not-a-uuid", mid: "nope" }) + (endpoint.method === "GET" ? "?limit=-1&orgId=" : ""),
        body: endpoint.method === "GET" ? undefined : "{",
        contentType: "application/json",
        auth: false,
      },
      allowed: [401],
    }));
    expect(await collect(cases)).toEqual([]);
  });
});

describe("nesting", () => {
  test("metadata may nest 64 levels; 65 is 400 metadata_too_deep; far deeper bodies are 400", async () => {
    const ok = await t.request("POST", `/api/conversations/${ids.id}/messages`, { as: caller, body: { content: "deep", metadata: deep(63) } });
    expectStatus(ok, 201);
    expect(JSON.stringify(ok.body.metadata)).toBe(JSON.stringify(deep(63)));
    await t.request("DELETE", `/api/conversations/${ids.id}/messages/${ok.body.id}`, { as: caller });
    const tooDeep = await t.request("POST", `/api/conversations/${ids.id}/messages`, { as: caller, body: { content: "deep", metadata: deep(64) } });
    expect([tooDeep.status, tooDeep.body.code]).toEqual([400, "metadata_too_deep"]);
    const wayTooDeep = await t.request("PATCH", `/api/conversations/${ids.id}`, { as: caller, body: { metadata: deep(5_000) } });
    expect(wayTooDeep.status).toBe(400);
  });
});

describe("nothing refused left a trace", () => {
  test("the conversation still holds its one message, its participants and its metadata", async () => {
    const messages = await listMessages(t, caller, ids.id);
    expect(messages.map((m) => [m.sequence, m.content, m.version])).toEqual([[1, "seed", 1]]);
    expect((await participantsOf(t, caller, ids.id)).map((p) => [p.user_id, p.role]).sort()).toEqual(
      [
        [caller.id, "owner"],
        [member.id, "member"],
      ].sort(),
    );
    const conversation = await t.request("GET", `/api/conversations/${ids.id}`, { as: caller });
    expect(conversation.body).toMatchObject({ name: "team", description: null, metadata: { seed: true } });
  });
});

describe("well-formed unicode round-trips", () => {
  const samples = {
    emoji: "Deploy done 🚀👍🏽 — 👩‍💻 ok",
    rtl: "مرحبا بالعالم שלום",
    override: "abc\u202edcba\u202c",
    combining: "e\u0301 Å ǅ",
    cjk: "漢字かなカナ한국어",
    astral: "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u{10FFFF}",
    controls: "tab\tnew\nline\u0001bell\u0007",
  };

  test.each(Object.entries(samples))("%s in names, content, metadata and principal ids", async (_kind, text) => {
    const created = await t.request("POST", "/api/conversations", {
      as: caller,
      body: { type: "group", name: text, description: text, metadata: { [text]: text, list: [text] } },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({ name: text.trim(), description: text, metadata: { [text]: text, list: [text] } });
    const id = created.body.id;
    const sent = await sendMessage(t, caller, id, { content: text, metadata: { note: text }, runId: text });
    expect(sent).toMatchObject({ content: text, metadata: { note: text }, run_id: text });
    const [listed] = await listMessages(t, caller, id);
    expect(listed.content).toBe(text);
    const added = await t.request("POST", `/api/conversations/${id}/participants`, { as: caller, body: { userId: text, userType: "agent" } });
    expectStatus(added, 201);
    expect(added.body.user_id).toBe(text);
    const removed = await t.request("DELETE", `/api/conversations/${id}/participants/${encodeURIComponent(text)}`, { as: caller });
    expectStatus(removed, 204);
  });
});
