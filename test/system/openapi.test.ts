/**
 * The OpenAPI document is complete enough for a client generator (a success status and schema per
 * operation, the `{error, code}` answers, which credentials each operation takes), and the docs page
 * works offline: everything it loads comes from this server, and its CSP allows nothing else.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startTestServer, type TestServer } from "../support/server";

setDefaultTimeout(60_000);

let t: TestServer;
let doc: any;
beforeAll(async () => {
  t = await startTestServer();
  doc = (await t.request("GET", "/docs/openapi.json")).body;
});
afterAll(() => t.stop());

const PUBLIC = new Set(["/api/health", "/api/bootstrap", "/api/auth/login", "/api/auth/logout", "/api/auth/session", "/docs/llms.txt"]);
const operations = () =>
  Object.entries<any>(doc.paths).flatMap(([path, item]) => Object.entries<any>(item).map(([method, op]) => ({ path, method, op })));

describe("the OpenAPI document", () => {
  test("every operation has its real success status and a schema for it", () => {
    const missing: string[] = [];
    for (const { path, method, op } of operations()) {
      const success = Object.keys(op.responses).filter((s) => s.startsWith("2") || s === "101");
      if (success.length === 0) missing.push(`${method} ${path}: no success status`);
      for (const status of success) {
        if (status === "204" || status === "101") continue;
        const content = op.responses[status].content;
        if (!content || !Object.values<any>(content)[0]?.schema) missing.push(`${method} ${path} ${status}: no schema`);
      }
    }
    expect(missing).toEqual([]);
    const status = (method: string, path: string) => Object.keys(doc.paths[path][method].responses).filter((s) => /^[12]/.test(s));
    expect(status("post", "/api/conversations")).toEqual(["201"]);
    expect(status("delete", "/api/conversations/{id}")).toEqual(["204"]);
    expect(status("post", "/api/conversations/{id}/leave")).toEqual(["204"]);
    expect(status("post", "/api/conversations/{id}/messages")).toEqual(["200", "201"]);
    expect(status("get", "/api/ws")).toEqual(["101"]);
  });

  test("resources are named components", () => {
    for (const name of ["Conversation", "ConversationWithParticipants", "Participant", "Message", "MessageVersion", "AdminConversationList", "AdminConversationDetail", "AdminStats", "Health", "Bootstrap", "AuthSession", "Error"]) {
      expect(doc.components.schemas[name]).toBeDefined();
    }
    const ok = doc.paths["/api/conversations/{id}"].get.responses["200"].content["application/json"].schema;
    expect(ok).toEqual({ $ref: "#/components/schemas/ConversationWithParticipants" });
  });

  test("every operation documents 400/401/403/404 as {error, code} (401 only where credentials are needed)", () => {
    expect(doc.components.schemas.Error.required.sort()).toEqual(["code", "error"]);
    const problems: string[] = [];
    for (const { path, method, op } of operations()) {
      const needed = ["400", "403", "404", ...(PUBLIC.has(path) ? [] : ["401"])];
      for (const status of needed) {
        const ref = op.responses[status]?.$ref as string | undefined;
        const response = ref ? doc.components.responses[ref.split("/").pop()!] : undefined;
        if (response?.content?.["application/json"]?.schema?.$ref !== "#/components/schemas/Error") problems.push(`${method} ${path} ${status}`);
      }
    }
    expect(problems).toEqual([]);
    expect(Object.keys(doc.paths["/api/conversations/{id}/messages"].post.responses)).toEqual(expect.arrayContaining(["409", "413", "503"]));
    expect(Object.keys(doc.paths["/api/auth/login"].post.responses)).toEqual(expect.arrayContaining(["401", "429"]));
  });

  test("three security schemes; public operations need none, all others any of them", () => {
    expect(doc.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: "http", scheme: "bearer" }),
      apiKey: expect.objectContaining({ type: "apiKey", in: "header", name: "X-API-Key" }),
      cookie: expect.objectContaining({ type: "apiKey", in: "cookie", name: "symbia_session" }),
    });
    for (const { path, op } of operations()) {
      expect([path, op.security]).toEqual([path, PUBLIC.has(path) ? [] : [{ bearer: [] }, { apiKey: [] }, { cookie: [] }]]);
    }
  });

  test("lists document their paging headers and integer bounds", () => {
    const list = doc.paths["/api/conversations"].get;
    expect(Object.keys(list.responses["200"].headers)).toEqual(["Link", "X-Total-Count"]);
    expect(list.parameters.find((p: any) => p.name === "offset").schema).toEqual({ type: "integer", minimum: 0, maximum: 1_000_000_000 });
  });
});

describe("the docs page", () => {
  /** Absolute URLs that would make a browser load something (XML namespace names load nothing). */
  const foreignUrls = (text: string) =>
    [...text.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'()<>]*/gi)]
      .map((m) => m[0])
      .filter((url) => !/^http:\/\/www\.w3\.org\//.test(url));

  test("the page and its styles reference only this origin; its scripts are this server's", async () => {
    const page = await fetch(t.url + "/docs");
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(foreignUrls(html)).toEqual([]);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const references = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(references.length).toBeGreaterThanOrEqual(3);
    for (const reference of references) {
      expect(reference).toStartWith("/docs/");
      const asset = await fetch(t.url + reference);
      expect([reference, asset.status]).toEqual([reference, 200]);
      const body = await asset.text();
      if (reference.endsWith(".css")) expect(foreignUrls(body)).toEqual([]);
      if (reference.endsWith(".js")) {
        // The bundle names spec and licence URLs in strings; it must not be told to load any. The validator,
        // the one public service Swagger UI calls by default, is turned off by the start script.
        expect(body).not.toContain("cdn.");
      }
    }
    expect(await (await fetch(t.url + "/docs/assets/start.js")).text()).toContain("validatorUrl: null");
  });

  test("a Content-Security-Policy allows this origin only and no inline script", async () => {
    const csp = (await fetch(t.url + "/docs")).headers.get("content-security-policy") ?? "";
    const directives = Object.fromEntries(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
    expect(directives["default-src"]).toEqual(["'none'"]);
    expect(directives["script-src"]).toEqual(["'self'"]);
    expect(directives["connect-src"]).toEqual(["'self'"]);
    expect(directives["frame-ancestors"]).toEqual(["'none'"]);
    for (const values of Object.values<string[]>(directives)) for (const v of values) expect(v).toMatch(/^'(self|none)'$|^data:$/);
  });

  test("an unknown asset is a JSON 404", async () => {
    const res = await t.request("GET", "/docs/assets/nope.js");
    expect([res.status, res.body.code]).toEqual([404, "not_found"]);
  });
});
