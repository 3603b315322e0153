/**
 * Builds the HTTP application: the request gate, error mapping, OpenAPI docs and every module. It does not
 * listen; `server.ts` does, and tests call `.listen()` on a free port.
 *
 * Where a request goes: src/modules/<feature>/index.ts holds the routes of each feature, which call the
 * domain functions in src/modules/<feature>/service.ts.
 */
import { Elysia, ValidationError, type AnyElysia } from "elysia";
import { admitRequest, requestContext, requestStateOf } from "./http/context";
import { AppError, isDatabaseUnavailable } from "./http/errors";
import { unknownRouteGuard } from "./http/known-routes";
import { edgeHeaders } from "./http/response-headers";
import { describeError, log } from "./log";
import { adminModule } from "./modules/admin";
import { authModule } from "./modules/auth";
import { controlModule } from "./modules/control";
import { conversationsModule } from "./modules/conversations";
import { docsModule } from "./modules/docs";
import { messagesModule } from "./modules/messages";
import { participantsModule } from "./modules/participants";
import { systemModule, type RouteInfo } from "./modules/system";
import { RealtimeHub } from "./realtime/hub";
import { realtimeModule } from "./realtime/route";
import { realtimeSocketOptions } from "./realtime/socket-options";
import type { Services } from "./services";

function json(status: number, body: unknown, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** A short, schema-free description of what failed validation: the field and the expectation. */
function describeValidation(error: ValidationError): string {
  const first = error.valueError;
  if (!first) return "Invalid input";
  const field = first.path ? first.path.replace(/^\//, "").replace(/\//g, ".") : error.type;
  return `${field || error.type}: ${first.message}`;
}

/** `realtime` is the hub behind /api/ws; the server keeps a handle on it to attach and shut it down. */
export function createApp(services: Services, realtime: RealtimeHub = new RealtimeHub(services)) {
  const { config } = services;
  let routeList: RouteInfo[] = [];
  // The document is built from the finished application, which does not exist yet while it is assembled.
  let whole: AnyElysia | undefined;

  const app = new Elysia({
    // Bun rejects larger bodies itself; the gate answers 413 with JSON first when Content-Length says so.
    serve: { maxRequestBodySize: config.maxBodyBytes + 64 * 1024, reusePort: false },
    websocket: realtimeSocketOptions(config),
  })
    .onRequest(edgeHeaders)
    .onRequest(unknownRouteGuard(() => whole?.routes ?? []))
    .onRequest(async ({ request, server, set }) => {
      try {
        const ip = server?.requestIP(request)?.address ?? "unknown";
        const state = await admitRequest(request, ip, services);
        set.headers["x-request-id"] = state.requestId;
      } catch (error) {
        const state = requestStateOf(request);
        const headers: Record<string, string> = state ? { "x-request-id": state.requestId } : {};
        if (error instanceof AppError) return json(error.status, error.toBody(), { ...headers, ...error.headers });
        if (isDatabaseUnavailable(error)) return json(503, { error: "Database unavailable", code: "database_unavailable" }, headers);
        log.error("request gate failed", { requestId: state?.requestId, ...describeError(error) });
        return json(500, { error: "Internal server error", code: "internal_error" }, headers);
      }
    })
    .onError({ as: "global" }, ({ code, error, request, set }) => {
      const state = requestStateOf(request);
      if (error instanceof AppError) {
        set.status = error.status;
        if (error.headers) Object.assign(set.headers, error.headers);
        return error.toBody();
      }
      if (error instanceof ValidationError && error.type === "response") {
        // An answer that does not match its documented schema is our fault, not the caller's.
        log.error("response does not match its schema", { requestId: state?.requestId, path: new URL(request.url).pathname, detail: describeValidation(error) });
        set.status = 500;
        return { error: "Internal server error", code: "internal_error" };
      }
      if (error instanceof ValidationError) {
        // A malformed id in a path names nothing that exists.
        if (error.type === "params") {
          set.status = 404;
          return { error: "Resource not found", code: "not_found" };
        }
        set.status = 400;
        return { error: describeValidation(error), code: "invalid_input" };
      }
      if (code === "PARSE") {
        // A parse hook's own refusal (not JSON at all, not an object, too deep) keeps its message and code.
        const cause = (error as { cause?: unknown }).cause;
        if (cause instanceof AppError) {
          set.status = cause.status;
          return cause.toBody();
        }
        set.status = 400;
        return { error: "Request body is not valid JSON", code: "invalid_json" };
      }
      if (code === "NOT_FOUND") {
        set.status = 404;
        return { error: "Route not found", code: "not_found" };
      }
      if (isDatabaseUnavailable(error)) {
        set.status = 503;
        return { error: "Database unavailable", code: "database_unavailable" };
      }
      log.error("unhandled error", {
        requestId: state?.requestId,
        method: request.method,
        path: new URL(request.url).pathname,
        ...describeError(error),
      });
      set.status = 500;
      return { error: "Internal server error", code: "internal_error" };
    })
    .onAfterResponse({ as: "global" }, ({ request, set }) => {
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
    .use(requestContext)
    .use(systemModule(services, () => routeList))
    .use(authModule(services))
    .use(conversationsModule(services))
    .use(participantsModule(services))
    .use(messagesModule(services))
    .use(controlModule(services))
    .use(adminModule(services))
    .use(realtimeModule(realtime));

  whole = app;
  routeList = app.routes
    .filter((r) => (!r.path.startsWith("/docs") || r.path === "/docs/llms.txt") && r.path !== "/api/ws/")
    .map((r) => ({ method: r.method, path: r.path }));
  return app;
}

export type App = ReturnType<typeof createApp>;
