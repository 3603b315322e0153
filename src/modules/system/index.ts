/**
 * Health, bootstrap (what this service is and how to talk to it) and the plain-text docs summary.
 */
import { Elysia, t } from "elysia";
import { Bootstrap, Health } from "./model";
import type { Services } from "../../services";
import { SERVICE_NAME, VERSION } from "../../version";

/** The WebSocket's event names, given by the app (the realtime layer owns them). */
export interface WebSocketEvents {
  client: readonly string[];
  server: readonly string[];
}

export interface RouteInfo {
  method: string;
  path: string;
}

const AUTH_METHODS = [
  { type: "bearer", header: "Authorization: Bearer <token>", description: "Session token from POST /api/auth/login, or an API key" },
  { type: "apiKey", header: "X-API-Key: <key>", description: "API key created by an operator (`symbia-messaging keys create`)" },
  { type: "cookie", cookie: "symbia_session", description: "Set by POST /api/auth/login (the name `token` is also read)" },
  { type: "query", parameters: ["token", "apiKey"], description: "WebSocket upgrade only, for browsers" },
];

export function describeService(services: Services, routes: RouteInfo[], events: WebSocketEvents, baseUrl: string) {
  return {
    service: SERVICE_NAME,
    version: VERSION,
    description: "Real-time messaging bus for users, AI agents and services: conversations, messages and control events over REST and WebSocket.",
    environment: services.config.env,
    docsUrls: {
      openapi: `${baseUrl}/docs/openapi.json`,
      ui: `${baseUrl}/docs`,
      llms: `${baseUrl}/docs/llms.txt`,
      websocket: `${baseUrl.replace(/^http/, "ws")}/api/ws`,
    },
    endpoints: routes,
    authentication: {
      mode: services.identity.mode,
      methods: AUTH_METHODS,
      login: "POST /api/auth/login",
      entitlements: ["cap:messaging.interrupt", "cap:messaging.route", "cap:messaging.observe", "messaging:admin"],
    },
    websocketEvents: { client: [...events.client], server: [...events.server] },
  };
}

function llmsText(info: ReturnType<typeof describeService>): string {
  return [
    `# ${info.service} ${info.version}`,
    "",
    `> ${info.description}`,
    "",
    "## Conventions",
    "- JSON in (camelCase), JSON out (snake_case resources). Errors: {\"error\", \"code\"} with 400/401/403/404/409/413/429/503.",
    "- Authenticate with `Authorization: Bearer <token>`, `X-API-Key`, or the `symbia_session` cookie.",
    "- Optional scope headers: X-Org-Id, X-Service-Id, X-Env, X-Data-Class (none|pii|phi|secret), X-Policy-Ref.",
    "- Services act for their agents with X-As-User-Id (entitlement messaging:act-as); webhooks: /api/webhooks (Standard Webhooks signatures).",
    "",
    "## Endpoints",
    ...info.endpoints.map((r) => `- ${r.method} ${r.path}`),
    "",
    "## WebSocket",
    `- Connect to ${info.docsUrls.websocket}; frames are {"event","data","ack"?}.`,
    `- Client events: ${info.websocketEvents.client.join(", ")}`,
    `- Server events: ${info.websocketEvents.server.join(", ")}`,
    "",
    "## Docs",
    `- OpenAPI: ${info.docsUrls.openapi}`,
    "",
  ].join("\n");
}

export function systemModule(services: Services, routes: () => RouteInfo[], events: WebSocketEvents) {
  const baseUrlOf = (request: Request) => services.config.publicUrl ?? new URL(request.url).origin;
  return new Elysia({ tags: ["system"] })
    .get(
      "/api/health",
      async ({ set }) => {
        if (await services.database.ping()) return { status: "ok" as const, service: "symbia-messaging" };
        set.status = 503;
        return { status: "degraded" as const, service: "symbia-messaging" };
      },
      {
        detail: { summary: "Liveness and database check" },
        response: { 200: Health, 503: Health },
      },
    )
    .get("/api/bootstrap", ({ request }) => describeService(services, routes(), events, baseUrlOf(request)), {
      response: { 200: Bootstrap },
      detail: { summary: "Service metadata, docs, endpoints, authentication and WebSocket events" },
    })
    .get(
      "/docs/llms.txt",
      ({ request, set }) => {
        set.headers["content-type"] = "text/plain; charset=utf-8";
        return llmsText(describeService(services, routes(), events, baseUrlOf(request)));
      },
      { response: { 200: t.String({ description: "Plain-text summary" }) }, detail: { summary: "Plain-text summary of the API for language models" } },
    );
}
