/**
 * Answers 404 for a path no route serves, before the request gate would answer 401: whether a route
 * exists is no secret (the OpenAPI document lists them all), and "authentication required" for a typo
 * sends a client looking for the wrong mistake. Known paths still pass the gate first, so a malformed
 * request to a real route without credentials remains a 401.
 */
import { fail } from "../core/errors";
import { errorResponse } from "./error-response";
import { withSecurityHeaders } from "./response-headers";

interface RouteLike {
  method: string;
  path: string;
}

type Matcher = { methods: Set<string>; pattern: RegExp };

function compile(routes: RouteLike[]): Matcher[] {
  const byPattern = new Map<string, Matcher>();
  for (const route of routes) {
    const source = "^" + route.path.split("/").map((part) => (part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("/") + "$";
    const matcher = byPattern.get(source) ?? { methods: new Set<string>(), pattern: new RegExp(source) };
    // A WebSocket route is reached by GET; ALL answers any method.
    matcher.methods.add(route.method === "WS" ? "GET" : route.method);
    byPattern.set(source, matcher);
  }
  return [...byPattern.values()];
}

/** `routes` is read once, at the first request, when the application is complete. */
export function unknownRouteGuard(routes: () => RouteLike[]) {
  let matchers: Matcher[] | undefined;
  return ({ request }: { request: Request }): Response | undefined => {
    matchers ??= compile(routes());
    const url = request.url;
    const start = url.indexOf("/", url.indexOf("//") + 2);
    const end = url.indexOf("?", start);
    const path = end < 0 ? url.slice(start) : url.slice(start, end);
    const method = request.method === "HEAD" ? "GET" : request.method;
    for (const m of matchers) if (m.pattern.test(path) && (m.methods.has(method) || m.methods.has("ALL"))) return undefined;
    return errorResponse(fail.not_found("Route not found"), {}, withSecurityHeaders({}));
  };
}
