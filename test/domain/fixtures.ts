/**
 * Shared set-up of the domain tests: conversations and messages created through the REST API of a real
 * server, and assertions on the `{error, code}` error body. Every test makes its own principals and orgs,
 * so the suite also runs against a shared PostgreSQL that already holds rows.
 */
import { expect } from "bun:test";
import type { TestPrincipal, TestServer } from "../support/server";

export type Response = Awaited<ReturnType<TestServer["request"]>>;

/** The error contract: the status, and a body that is exactly `{error, code}` (plus the code's documented `details`). */
export function expectError(res: Response, status: number, code?: string, details: Record<string, unknown> = {}): void {
  if (res.status !== status) throw new Error(`expected ${status}${code ? ` ${code}` : ""}, got ${res.status}: ${JSON.stringify(res.body)}`);
  expect(res.body).toEqual({ ...details, error: expect.any(String), code: code ?? expect.any(String) });
}

export function expectStatus(res: Response, status: number): void {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
}

export interface ConversationOptions {
  type?: "private" | "group";
  name?: string;
  orgId?: string;
  members?: TestPrincipal[];
  metadata?: Record<string, unknown>;
}

/** Creates a conversation owned by `owner`; members join as members. Returns its resource. */
export async function createConversation(t: TestServer, owner: TestPrincipal, options: ConversationOptions = {}) {
  const type = options.type ?? "group";
  const res = await t.request("POST", "/api/conversations", {
    as: owner,
    body: {
      type,
      ...(type === "group" && { name: options.name ?? "team" }),
      ...(options.orgId && { orgId: options.orgId }),
      ...(options.metadata && { metadata: options.metadata }),
      participants: (options.members ?? []).map((m) => ({ userId: m.id, userType: m.type })),
    },
  });
  expectStatus(res, 201);
  return res.body as { id: string; org_id: string | null; participants: any[] } & Record<string, any>;
}

export async function sendMessage(
  t: TestServer,
  as: TestPrincipal,
  conversationId: string,
  body: Record<string, unknown> = {},
  headers?: Record<string, string>,
) {
  const res = await t.request("POST", `/api/conversations/${conversationId}/messages`, {
    as,
    body: { content: "hello", ...body },
    headers,
  });
  if (res.status !== 201 && res.status !== 200) throw new Error(`send failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Record<string, any> & { id: string; sequence: number; created_at: string };
}

export async function listMessages(t: TestServer, as: TestPrincipal, conversationId: string, query = "") {
  const res = await t.request("GET", `/api/conversations/${conversationId}/messages${query ? `?${query}` : ""}`, { as });
  expectStatus(res, 200);
  return res.body as (Record<string, any> & { id: string; sequence: number })[];
}

/** Every message of a conversation in sequence order, read in pages of 200 as `as` sees them. */
export async function everyMessage(t: TestServer, as: TestPrincipal, conversationId: string) {
  const all: { id: string; sequence: number; content: string; sender_id: string; content_type: string; reply_to: string | null }[] = [];
  for (;;) {
    const after = all.length ? all[all.length - 1].sequence : 0;
    const res = await t.request("GET", `/api/conversations/${conversationId}/messages?after=${after}&limit=200`, { as });
    expectStatus(res, 200);
    if (res.body.length === 0) return all;
    all.push(...res.body);
  }
}

export async function participantsOf(t: TestServer, as: TestPrincipal, conversationId: string) {
  const res = await t.request("GET", `/api/conversations/${conversationId}`, { as });
  expectStatus(res, 200);
  return res.body.participants as { id: string; user_id: string; role: string; user_type: string; last_read_at: string | null }[];
}

export const roleOf = async (t: TestServer, as: TestPrincipal, conversationId: string, userId: string) =>
  (await participantsOf(t, as, conversationId)).find((p) => p.user_id === userId)?.role;

/** A well-formed UUID that names nothing. */
export const UNKNOWN_ID = "00000000-0000-4000-8000-000000000000";
