/**
 * Builds the HTTP application: the request gate, error mapping, OpenAPI docs and every module. It does not
 * listen; `server.ts` does, and tests call `.listen()` on a free port.
 *
 * Where a request goes: src/modules/<feature>/index.ts holds the routes of each feature, which call the
 * domain functions in src/modules/<feature>/service.ts.
 */
import { Elysia, type AnyElysia } from "elysia";
import { admitRequest, requestContext, requestStateOf } from "./http/context";
import { errorAnswer, errorResponse } from "./http/error-response";
import { unknownRouteGuard } from "./http/known-routes";
import { answerMetrics, isScrape } from "./http/metrics-endpoint";
import { GATE_ROUTE, recordRequest, statusOf, UNMATCHED_ROUTE } from "./http/request-metrics";
import { edgeHeaders } from "./http/response-headers";
import { log } from "./log";
import { adminModule } from "./modules/admin";
import { authModule } from "./modules/auth";
import { controlModule } from "./modules/control";
import { consoleModule } from "./modules/console";
import { conversationsModule } from "./modules/conversations";
import { docsModule } from "./modules/docs";
import { messagesModule } from "./modules/messages";
import { participantsModule } from "./modules/participants";
import { runsModule } from "./modules/runs";
import { systemModule, type RouteInfo } from "./modules/system";
import { webhooksModule } from "./modules/webhooks";
import { ConversationReads } from "./domain/conversation-reads";
import { registerListeners } from "./listeners";
import { RealtimeHub } from "./realtime/hub";
import { realtimeModule } from "./realtime/route";
import { CLIENT_EVENTS, SERVER_EVENTS } from "./realtime/wire-events";
import { realtimeSocketOptions } from "./realtime/socket-options";
import type { Services } from "./services";

/** The WebSocket hub, reading through the domain's conversation reads. */
export function createRealtimeHub(services: Services): RealtimeHub {
  return new RealtimeHub(services.config, new ConversationReads(services.database.db), services.streams);
}

/** `realtime` is the hub behind /api/ws; the server keeps a handle on it to attach and shut it down. */
export function createApp(services: Services, realtime: RealtimeHub = createRealtimeHub(services)) {
  const { config } = services;
  realtime.onShutdown(registerListeners(services, realtime));
  let routeList: RouteInfo[] = [];
  // The document is built from the finished application, which does not exist yet while it is assembled.
  let whole: AnyElysia | undefined;
  const guardRoutes = unknownRouteGuard(() => whole?.routes ?? []);

  const app = new Elysia({
    // Bun rejects larger bodies itself; the gate answers 413 with JSON first when Content-Length says so.
    serve: { maxRequestBodySize: config.maxBodyBytes + 64 * 1024, reusePort: false },
    websocket: realtimeSocketOptions(config),
  })
    .onRequest(edgeHeaders)
    // Ahead of the route guard and the gate: a scrape is not an API request (./http/metrics-endpoint.ts says who may).
    .onRequest(({ request, server }) => {
      if (isScrape(request, config)) return answerMetrics(request, server?.requestIP(request)?.address ?? "unknown", config);
    })
    .onRequest((context) => {
      const refused = guardRoutes(context);
      if (refused) recordRequest(context.request.method, UNMATCHED_ROUTE, refused.status, undefined);
      return refused;
    })
    .onRequest(async ({ request, server, set }) => {
      try {
        const ip = server?.requestIP(request)?.address ?? "unknown";
        const state = await admitRequest(request, ip, services);
        set.headers["x-request-id"] = state.requestId;
      } catch (error) {
        const state = requestStateOf(request);
        const context = { requestId: state?.requestId, method: request.method, path: new URL(request.url).pathname };
        const response = errorResponse(error, context, state ? { "x-request-id": state.requestId } : undefined);
        recordRequest(request.method, GATE_ROUTE, response.status, state?.startedAt);
        return response;
      }
    })
    .onError({ as: "global" }, ({ code, error, request, set }) => {
      const context = { requestId: requestStateOf(request)?.requestId, method: request.method, path: new URL(request.url).pathname, elysiaCode: code };
      const { status, body, headers } = errorAnswer(error, context);
      set.status = status;
      if (headers) Object.assign(set.headers, headers);
      return body;
    })
    .onAfterResponse({ as: "global" }, ({ request, set, route, responseValue }) => {
      recordRequest(request.method, route, statusOf(responseValue, set.status), requestStateOf(request)?.startedAt);
      if (!log.enabled("debug")) return;
      const state = requestStateOf(request);
      log.debug("request", {
        requestId: state?.requestId,
        method: request.method,
        path: new URL(request.url).pathname,
        status: set.status,
        principal: state?.principal?.id,
        service: state?.scope.serviceId,
        ms: state ? Math.round((performance.now() - state.startedAt) * 10) / 10 : undefined,
      });
    })
    .use(docsModule(services, () => whole!))
    .use(consoleModule())
    .use(requestContext)
    .use(systemModule(services, () => routeList, { client: CLIENT_EVENTS, server: SERVER_EVENTS }))
    .use(authModule(services))
    .use(conversationsModule(services))
    .use(participantsModule(services))
    .use(messagesModule(services))
    .use(controlModule(services))
    .use(runsModule(services))
    .use(adminModule(services))
    .use(webhooksModule(services))
    .use(realtimeModule(realtime, services));

  whole = app;
  routeList = app.routes
    .filter((r) => (!r.path.startsWith("/docs") || r.path === "/docs/llms.txt") && !r.path.startsWith("/console") && r.path !== "/api/ws/")
    .map((r) => ({ method: r.method, path: r.path }));
  return app;
}

export type App = ReturnType<typeof createApp>;
