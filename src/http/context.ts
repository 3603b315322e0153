/**
 * The gate every request passes before routing: request id, body size, scope headers and authentication.
 * It runs in `onRequest`, ahead of body parsing and schema validation, so an unauthenticated request gets
 * 401 whatever its body. What it learns is kept per request and handed to handlers by `requestContext`.
 */
import { Elysia } from "elysia";
import type { Config } from "../config";
import { ACT_AS_HEADER, ACT_AS_QUERY, actAs } from "../auth/act-as";
import { extractCredentials, hasCredentials, type IdentityProvider } from "../auth/identity";
import { isOrgMember, type Principal } from "../auth/principal";
import { AppError, fail } from "../core/errors";
import type { Scope } from "../core/scope";
import { clientAddress } from "./client-address";
import { readScope } from "./scope";
import { socketOriginAllowed } from "./socket-origin";
import { addedSinceOf } from "./socket-query";

export interface RequestState {
  requestId: string;
  startedAt: number;
  ip: string;
  principal?: Principal;
  scope: Scope;
}

const states = new WeakMap<Request, RequestState>();

/** Paths answered without credentials. Everything else, the WebSocket upgrade included, needs a principal. */
const PUBLIC_PATHS = new Set(["/api/health", "/api/bootstrap", "/api/auth/login", "/api/auth/logout", "/api/auth/session"]);

export function isPublicPath(path: string): boolean {
  return PUBLIC_PATHS.has(path) || path === "/docs" || path.startsWith("/docs/") || !path.startsWith("/api/");
}

function pathOf(url: string): { path: string; query?: string } {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const q = url.indexOf("?", start);
  return q < 0 ? { path: url.slice(start) } : { path: url.slice(start, q), query: url.slice(q + 1) };
}

let counter = 0;
const instanceTag = Math.random().toString(36).slice(2, 8);

function newRequestId(): string {
  counter = (counter + 1) % 0x7fffffff;
  return `${instanceTag}-${counter.toString(36)}`;
}

export interface GateDeps {
  config: Config;
  identity: IdentityProvider;
}

/**
 * Resolves the state of a request or throws the AppError to answer instead. Exported for the WebSocket
 * upgrade, which is gated the same way.
 */
export async function admitRequest(request: Request, ip: string, deps: GateDeps): Promise<RequestState> {
  const existing = states.get(request);
  if (existing) return existing;
  const incomingId = request.headers.get("x-request-id");
  const state: RequestState = {
    requestId: incomingId && incomingId.length <= 128 ? incomingId : newRequestId(),
    startedAt: performance.now(),
    ip: clientAddress(ip, request.headers.get("x-forwarded-for"), deps.config.trustProxy),
    scope: {},
  };
  states.set(request, state);

  const length = Number(request.headers.get("content-length") ?? 0);
  if (length > deps.config.maxBodyBytes) {
    throw fail.too_large(`Request body exceeds ${deps.config.maxBodyBytes} bytes`);
  }
  state.scope = readScope(request.headers, deps.config.env);

  const { path, query } = pathOf(request.url);
  const isPublic = isPublicPath(path);
  const isSocket = path === "/api/ws" || path === "/api/ws/";
  const socketQuery = isSocket && query ? new URLSearchParams(query) : undefined;
  const credentials = extractCredentials(request.headers, socketQuery);
  if (isSocket && credentials.cookie && !credentials.bearer && !credentials.apiKey && !socketOriginAllowed(request.headers, deps.config)) {
    throw fail.origin_forbidden("This origin may not open the WebSocket with the session cookie (see ALLOWED_ORIGINS)");
  }
  if (hasCredentials(credentials)) {
    const outcome = await deps.identity.authenticate(credentials);
    if (outcome?.ok) state.principal = outcome.principal;
    else if (outcome && !isPublic) throw new AppError(outcome.code, outcome.message);
  }
  if (!isPublic && !state.principal) throw fail.unauthorized();
  if (socketQuery) addedSinceOf(socketQuery);
  // Acting for another principal replaces the principal here, before anything looks at it: every route,
  // the org scope check below and the WebSocket alike see only the principal acted for.
  // On REST the header alone acts; a query parameter there would otherwise be ignored, and the request
  // go out as the caller.
  if (!isSocket && query?.includes(`${ACT_AS_QUERY}=`) && new URLSearchParams(query).has(ACT_AS_QUERY)) {
    throw fail.invalid_input(`${ACT_AS_QUERY} is a parameter of the WebSocket upgrade only; over REST send the X-As-User-Id header`);
  }
  const asUserId = request.headers.get(ACT_AS_HEADER) ?? socketQuery?.get(ACT_AS_QUERY) ?? null;
  if (asUserId !== null) {
    if (!state.principal) throw fail.act_as_forbidden("Acting for another principal needs a credential");
    state.principal = await actAs(deps.identity, state.principal, asUserId);
  }
  if (state.principal && state.scope.orgId && !isOrgMember(state.principal, state.scope.orgId)) {
    throw fail.org_forbidden("You are not a member of the organization named by X-Org-Id");
  }
  return state;
}

export function requestStateOf(request: Request): RequestState | undefined {
  return states.get(request);
}

/** Handlers' view of the gate's result: `principal` may be undefined only on public paths. */
export const requestContext = new Elysia({ name: "request-context" }).derive({ as: "global" }, ({ request }) => {
  const state = states.get(request);
  return {
    requestId: state?.requestId ?? "-",
    scope: state?.scope ?? {},
    clientIp: state?.ip ?? "unknown",
    principal: state?.principal,
  };
});

/** For routes behind the gate: a principal is guaranteed, this only narrows the type. */
export const authenticated = new Elysia({ name: "authenticated" })
  .use(requestContext)
  .derive({ as: "scoped" }, ({ principal }) => {
    if (!principal) throw fail.unauthorized();
    return { principal };
  });
