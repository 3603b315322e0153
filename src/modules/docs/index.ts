/**
 * /docs (the API reference page), /docs/assets/* (its script and style, from the executable) and
 * /docs/openapi.json (the document). /docs/llms.txt is the system module's.
 */
import { fail } from "../../core/errors";
import { Elysia, type AnyElysia } from "elysia";
import type { Services } from "../../services";
import { SERVICE_NAME, VERSION } from "../../version";
import { buildOpenApiDocument } from "./openapi-document";
import { DOCS_ASSETS, DOCS_CSP, docsPage } from "./ui";

const INFO = {
  title: SERVICE_NAME,
  version: VERSION,
  description:
    "REST API of the messaging bus. Lists answer one page at a time (see the Link and X-Total-Count headers). " +
    "The WebSocket protocol is described at /docs/llms.txt and in docs/realtime.md.",
};

const hidden = { detail: { hide: true } };

/** `app` is the whole application, read when the document is first asked for (all routes are known by then). */
export function docsModule(services: Services, app: () => AnyElysia) {
  const documents = new Map<string, string>();
  const documentFor = (serverUrl: string) => {
    let text = documents.get(serverUrl);
    if (!text) {
      text = JSON.stringify(buildOpenApiDocument(app(), INFO, serverUrl));
      // One per base URL the server is reached by; a handful at most, but never let Host grow it unbounded.
      if (documents.size > 16) documents.clear();
      documents.set(serverUrl, text);
    }
    return text;
  };
  const page = docsPage(SERVICE_NAME);

  return new Elysia({ name: "docs", tags: ["system"] })
    .get(
      "/docs",
      () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": DOCS_CSP, "cache-control": "no-cache" } }),
      hidden,
    )
    .get(
      "/docs/assets/:name",
      ({ params }) => {
        const asset = Object.hasOwn(DOCS_ASSETS, params.name) ? DOCS_ASSETS[params.name] : undefined;
        if (!asset) throw fail.not_found("Route not found");
        return new Response(asset.body(), { headers: { "content-type": asset.type, "cache-control": "public, max-age=86400" } });
      },
      hidden,
    )
    .get(
      "/docs/openapi.json",
      ({ request }) => {
        const serverUrl = services.config.publicUrl ?? new URL(request.url).origin;
        return new Response(documentFor(serverUrl), { headers: { "content-type": "application/json" } });
      },
      hidden,
    );
}
