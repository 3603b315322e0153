import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

describe("system endpoints", () => {
  test("health reports ok with the database up", async () => {
    const res = await t.request("GET", "/api/health");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok", service: "symbia-messaging" });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  test("bootstrap describes the service, docs, endpoints, auth and both event lists", async () => {
    const res = await t.request("GET", "/api/bootstrap");
    expect(res.status).toBe(200);
    expect(res.body.service).toBe("symbia-messaging");
    expect(typeof res.body.version).toBe("string");
    expect(res.body.docsUrls.openapi).toEndWith("/docs/openapi.json");
    expect(res.body.endpoints).toContainEqual({ method: "GET", path: "/api/health" });
    expect(res.body.authentication.methods.map((m: any) => m.type)).toEqual(["bearer", "apiKey", "cookie", "query"]);
    expect(res.body.websocketEvents.client).toContain("join:conversation");
    expect(res.body.websocketEvents.server).toContain("message:new");
  });

  test("openapi document is OpenAPI 3 and lists every route the app has", async () => {
    const res = await t.request("GET", "/docs/openapi.json");
    expect(res.status).toBe(200);
    expect(res.body.openapi).toStartWith("3.");
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries<any>(res.body.paths)) {
      for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`);
    }
    // The docs and the console are pages, not API routes.
    const routes = t.server.app.routes.filter((r) => !/^\/(docs|console)(\/|$)/.test(r.path) && r.method !== "WS" && r.method !== "ALL");
    expect(routes.length).toBeGreaterThan(3);
    for (const route of routes) expect(documented).toContain(`${route.method} ${route.path}`);
  });

  test("docs UI and llms.txt are served", async () => {
    const ui = await fetch(t.url + "/docs");
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain("<html");
    const llms = await fetch(t.url + "/docs/llms.txt");
    expect(llms.status).toBe(200);
    expect(llms.headers.get("content-type")).toStartWith("text/plain");
    expect(await llms.text()).toContain("GET /api/health");
  });
});

describe("HTTP plumbing", () => {
  test("unknown routes are 404 JSON", async () => {
    const user = await t.principal();
    const res = await t.request("GET", "/api/nothing-here", { as: user });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: "Route not found", code: "not_found" });
  });

  test("protected routes answer 401 without credentials, whatever the body", async () => {
    const res = await t.request("POST", "/api/conversations", { body: "{not json" });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("unauthorized");
  });

  test("oversized bodies are 413", async () => {
    const user = await t.principal();
    const res = await t.request("POST", "/api/auth/login", { as: user, body: { email: "a@b.c", password: "x".repeat(t.config.maxBodyBytes + 10) } });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe("too_large");
  });

  test("malformed JSON is 400 invalid_json", async () => {
    const res = await t.request("POST", "/api/auth/login", { body: "{nope" });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("invalid_json");
  });

  test("schema failures are 400 with a short message, not the schema", async () => {
    const res = await t.request("POST", "/api/auth/login", { body: { email: 42 } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("invalid_input");
    expect(JSON.stringify(res.body).length).toBeLessThan(300);
  });

  test.each([
    ["x-env", "production", "invalid_header"],
    ["x-environment", "qa", "invalid_header"],
    ["x-env", "prod", "environment_mismatch"],
    ["x-data-class", "top-secret", "invalid_header"],
  ])("scope header %s: %s is rejected with 400", async (name, value, code) => {
    const user = await t.principal();
    const res = await t.request("GET", "/api/auth/me", { as: user, headers: { [name]: value } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(code);
  });

  test("valid scope headers pass", async () => {
    const user = await t.principal();
    const res = await t.request("GET", "/api/auth/me", { as: user, headers: { "x-env": "dev", "x-data-class": "pii" } });
    expect(res.status).toBe(200);
  });

  test("X-Org-Id of an org the caller is not in is 403", async () => {
    const org = await t.org();
    const other = await t.org();
    const user = await t.principal({ orgs: [org] });
    expect((await t.request("GET", "/api/auth/me", { as: user, headers: { "x-org-id": org } })).status).toBe(200);
    const res = await t.request("GET", "/api/auth/me", { as: user, headers: { "x-org-id": other } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("org_forbidden");
  });
});
