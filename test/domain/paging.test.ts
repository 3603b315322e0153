/**
 * Lists never stop silently: every list endpoint answers a page and a `Link: rel="next"` while more
 * remains, so a client that follows it sees every item exactly once.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { expectError, sendMessage } from "./fixtures";

setDefaultTimeout(120_000);

let t: TestServer;
let owner: TestPrincipal;
let admin: TestPrincipal;
let org: string;
const created: string[] = [];

beforeAll(async () => {
  t = await startTestServer();
  org = await t.org("paging");
  owner = await t.principal({ orgs: [org] });
  admin = await t.principal({ superAdmin: true });
  for (let i = 0; i < 250; i++) {
    const res = await t.request("POST", "/api/conversations", { as: owner, body: { type: "group", name: `c${i}`, orgId: org } });
    created.push(res.body.id);
  }
});
afterAll(() => t.stop());

const nextLink = (headers: Headers) => headers.get("link")?.match(/^<([^>]+)>; rel="next"$/)?.[1];

/** Follows `next` from `path`; returns every item and the number of pages. */
async function pageThrough(path: string, as: TestPrincipal, items: (body: any) => any[]) {
  const seen: any[] = [];
  let url: string | undefined = t.url + path;
  let pages = 0;
  let total: string | null = null;
  while (url) {
    expect(url.startsWith(t.url)).toBe(true);
    const res = await fetch(url, { headers: as.headers });
    expect(res.status).toBe(200);
    total = res.headers.get("x-total-count") ?? total;
    seen.push(...items(await res.json()));
    url = nextLink(res.headers);
    if (++pages > 100) throw new Error("paging does not end");
  }
  return { seen, pages, total };
}

describe("paging", () => {
  test("250 conversations, 100 a page by default: all of them exactly once, and the total", async () => {
    const { seen, pages, total } = await pageThrough("/api/conversations", owner, (body) => body);
    expect(pages).toBe(3);
    expect(total).toBe("250");
    expect(seen.map((c) => c.id).sort()).toEqual([...created].sort());
  });

  test("with another limit and an orgId filter, the Link keeps both", async () => {
    const first = await fetch(`${t.url}/api/conversations?limit=60&orgId=${org}`, { headers: owner.headers });
    const next = new URL(nextLink(first.headers)!);
    expect(next.searchParams.get("orgId")).toBe(org);
    expect(next.searchParams.get("limit")).toBe("60");
    expect(next.searchParams.get("offset")).toBe("60");
    const { seen, pages } = await pageThrough(`/api/conversations?limit=60&orgId=${org}`, owner, (body) => body);
    expect([seen.length, new Set(seen.map((c) => c.id)).size, pages]).toEqual([250, 250, 5]);
  });

  test("the last page has no next link", async () => {
    const res = await fetch(`${t.url}/api/conversations?offset=200`, { headers: owner.headers });
    expect(((await res.json()) as unknown[]).length).toBe(50);
    expect(res.headers.get("link")).toBeNull();
    expect(res.headers.get("x-total-count")).toBe("250");
  });

  test("admin lists page the same way", async () => {
    const all = await pageThrough(`/api/admin/conversations?orgId=${org}&limit=200`, admin, (body) => body.items);
    expect([all.seen.length, new Set(all.seen.map((c) => c.id)).size, all.pages, all.total]).toEqual([250, 250, 2, "250"]);
    const theirs = await pageThrough(`/api/admin/users/${encodeURIComponent(owner.id)}/conversations`, admin, (body) => body);
    expect([theirs.seen.length, new Set(theirs.seen.map((c) => c.id)).size, theirs.pages, theirs.total]).toEqual([250, 250, 3, "250"]);
  });

  test("messages page by sequence: newest first pages, then older ones, each message once", async () => {
    const conversation = created[0];
    for (let i = 0; i < 120; i++) await sendMessage(t, owner, conversation, { content: `m${i}` });
    const back = await pageThrough(`/api/conversations/${conversation}/messages?limit=50`, owner, (body) => body);
    expect(back.pages).toBe(3);
    expect(back.seen.map((m) => m.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    const forward = await pageThrough(`/api/conversations/${conversation}/messages?after=0&limit=50`, owner, (body) => body);
    expect(forward.seen.map((m) => m.sequence)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    // A page that ends exactly at the last message has no next link.
    const exact = await fetch(`${t.url}/api/conversations/${conversation}/messages?after=70&limit=50`, { headers: owner.headers });
    expect([((await exact.json()) as unknown[]).length, exact.headers.get("link")]).toEqual([50, null]);
  });

  test("limits beyond their bounds are refused, not cut", async () => {
    expectError(await t.request("GET", "/api/conversations?limit=501", { as: owner }), 400, "invalid_input");
    expectError(await t.request("GET", "/api/admin/conversations?limit=201", { as: admin }), 400, "invalid_input");
    expectError(await t.request("GET", `/api/conversations/${created[0]}/messages?limit=201`, { as: owner }), 400, "invalid_input");
  });
});
