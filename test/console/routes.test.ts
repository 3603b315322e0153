/**
 * /console and its assets as the server serves them (here from source, bundled on first use; the
 * compiled executable embeds the same files, see console.browser.ts): the page with its strict CSP, the
 * content-hashed script and style, caching, compression, and the error answers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
let page: string;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const assetsOf = (html: string) => [...html.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]);

describe("GET /console", () => {
  test("the page: HTML with a strict CSP, no inline script or style, revalidated on every load", async () => {
    const res = await fetch(t.url + "/console");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/html");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const csp = res.headers.get("content-security-policy")!;
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toMatch(/unsafe-|https?:|\*/);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    page = await res.text();
    expect(page).toContain('<div id="console">');
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son\w+=/);
    const assets = assetsOf(page);
    expect(assets).toHaveLength(2);
    for (const asset of assets) expect(asset).toMatch(/^\/console\/assets\/[\w-]+-[a-z0-9]{8}\.(js|css)$/);
    expect((await (await fetch(t.url + "/console/")).text())).toBe(page);
  });

  test("is public, like /docs: no credential needed, a bad one ignored", async () => {
    const res = await fetch(t.url + "/console", { headers: { authorization: "Bearer nonsense" } });
    expect(res.status).toBe(200);
  });

  test("is not an API route: neither in the OpenAPI document nor in bootstrap", async () => {
    const document = (await (await fetch(t.url + "/docs/openapi.json")).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(document.paths).filter((path) => path.startsWith("/console"))).toEqual([]);
    const bootstrap = (await t.request("GET", "/api/bootstrap")).body;
    expect(bootstrap.endpoints.filter((e: { path: string }) => e.path.startsWith("/console"))).toEqual([]);
  });
});

describe("GET /console/assets/:name", () => {
  test("script and style: their types, cached for good (the name changes with the content)", async () => {
    for (const asset of assetsOf(page)) {
      const res = await fetch(t.url + asset, { headers: { "accept-encoding": "identity" } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toStartWith(asset.endsWith(".js") ? "text/javascript" : "text/css");
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(res.headers.get("content-encoding")).toBeNull();
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
  });

  test("gzipped for browsers that take it, and 304 for a copy still current", async () => {
    const script = assetsOf(page).find((a) => a.endsWith(".js"))!;
    const plain = new Uint8Array(await (await fetch(t.url + script, { headers: { "accept-encoding": "identity" } })).arrayBuffer());
    const gzipped = await fetch(t.url + script, { headers: { "accept-encoding": "gzip, br" }, decompress: false } as RequestInit);
    expect(gzipped.headers.get("content-encoding")).toBe("gzip");
    const compressed = new Uint8Array(await gzipped.arrayBuffer());
    expect(compressed.byteLength).toBeLessThan(plain.byteLength / 2);
    expect(Bun.gunzipSync(compressed)).toEqual(plain);

    const etag = gzipped.headers.get("etag")!;
    expect(etag).toMatch(/^"[a-z0-9]+"$/);
    const again = await fetch(t.url + script, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
  });

  test("an unknown name is 404 with {error, code}, the page's own name included", async () => {
    for (const name of ["nope.js", "index.html", "..%2Fbundle.ts"]) {
      const res = await fetch(`${t.url}/console/assets/${name}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: "Route not found", code: "not_found" });
    }
  });
});
