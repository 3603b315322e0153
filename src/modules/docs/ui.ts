/**
 * The API reference page. Its script and style come from swagger-ui-dist, embedded into the executable by
 * Bun's bundler (`with { type: "file" }`), so /docs works offline and loads nothing from another host;
 * the Content-Security-Policy says so to the browser as well. The page has no inline script: the few
 * lines that start the UI are a file of their own.
 */
import bundlePath from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import stylePath from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import iconPath from "swagger-ui-dist/favicon-32x32.png" with { type: "file" };

/** Only this origin: no inline script or style, no eval, no framing. (Swagger UI sets element styles through the DOM, which style-src does not govern.) */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Starts Swagger UI on the document; no validator (it would call a public service), no telemetry. */
const START_SCRIPT = `window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: "/docs/openapi.json",
    dom_id: "#api-reference",
    deepLinking: true,
    validatorUrl: null,
    withCredentials: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
`;

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Every reference is a path on this origin. */
export function docsPage(title: string): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${escapeHtml(title)} API reference</title>
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
    <link rel="icon" type="image/png" href="/docs/assets/favicon.png">
  </head>
  <body>
    <div id="api-reference"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/assets/start.js"></script>
  </body>
</html>
`;
}

export interface DocsAsset {
  body: () => Blob | string;
  type: string;
}

/** What /docs/assets/<name> serves. */
export const DOCS_ASSETS: Record<string, DocsAsset> = {
  "swagger-ui-bundle.js": { body: () => Bun.file(bundlePath), type: "text/javascript; charset=utf-8" },
  "swagger-ui.css": { body: () => Bun.file(stylePath), type: "text/css; charset=utf-8" },
  "favicon.png": { body: () => Bun.file(iconPath), type: "image/png" },
  "start.js": { body: () => START_SCRIPT, type: "text/javascript; charset=utf-8" },
};
