/**
 * HTTP requests in the metrics: counted by method, route template and status, timed by method and route.
 * The app calls `recordRequest` after each answer (and for what the gate refused before routing), so a
 * route added later is measured without further code.
 */
import { StatusMap } from "elysia";
import { httpRequestDuration, httpRequests } from "../metrics/registry";
import type { Tally, Timings } from "../metrics/instruments";

/** What no route matched (any path: never a label), and what the gate answered before routing. */
export const UNMATCHED_ROUTE = "unmatched";
export const GATE_ROUTE = "gate";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

interface RouteSeries {
  duration: Timings;
  byStatus: Map<number, Tally>;
}

/** route → method → series: built once per combination, so that a request only looks its series up. */
const series = new Map<string, Map<string, RouteSeries>>();

function seriesOf(method: string, route: string): RouteSeries {
  let byMethod = series.get(route);
  if (!byMethod) series.set(route, (byMethod = new Map()));
  let entry = byMethod.get(method);
  if (!entry) byMethod.set(method, (entry = { duration: httpRequestDuration.labels(method, route), byStatus: new Map() }));
  return entry;
}

/**
 * `route` is the template Elysia matched (`/api/conversations/:id/messages`), undefined when none did;
 * `startedAt` the gate's `performance.now()` at arrival.
 */
export function recordRequest(method: string, route: string | undefined, status: number, startedAt: number | undefined): void {
  // Any method string reaches an unmatched route: outside the usual ones it is `other`.
  const knownMethod = METHODS.has(method) ? method : "other";
  const template = route || UNMATCHED_ROUTE;
  const entry = seriesOf(knownMethod, template);
  let count = entry.byStatus.get(status);
  if (!count) entry.byStatus.set(status, (count = httpRequests.labels(knownMethod, template, String(status))));
  count.inc();
  if (startedAt !== undefined) entry.duration.since(startedAt);
}

/** The status of an answer: a Response a handler returned carries its own, else what `set.status` says. */
export function statusOf(response: unknown, setStatus: number | string | undefined): number {
  if (response instanceof Response) return response.status;
  if (typeof setStatus === "number") return setStatus;
  return (setStatus && (StatusMap as Record<string, number>)[setStatus]) || 200;
}
