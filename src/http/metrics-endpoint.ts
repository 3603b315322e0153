/**
 * GET /metrics: the Prometheus text exposition of src/metrics/registry.ts, and who may read it.
 *
 * - No METRICS_TOKEN: loopback clients only (a Prometheus or agent on the same host); anyone else gets
 *   404, as for a route that does not exist.
 * - METRICS_TOKEN set: every client, loopback included, must send `Authorization: Bearer <token>` (403
 *   `metrics_forbidden` otherwise). Loopback is not enough then, because a reverse proxy on the same host
 *   makes every client look local.
 * - METRICS_PORT set: served by a listener of its own on that port (same rules), and not on the main port.
 *
 * The client address is the socket's peer; forwarded headers (X-Forwarded-For, Forwarded) are never
 * believed. Scrapes are answered ahead of the request gate: a metrics token is not a credential of the
 * messaging API, so it is never looked up as one (nor sent to a remote Identity service).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Server } from "bun";
import type { Config } from "../config";
import { fail } from "../core/errors";
import { log } from "../log";
import { registry } from "../metrics/registry";
import { errorResponse } from "./error-response";

export type MetricsAccess = "allowed" | "hidden" | "refused";

/** 127.0.0.0/8, ::1, and IPv4 loopback mapped into IPv6 (how a dual-stack socket reports it). */
export function isLoopback(address: string): boolean {
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === "::1" || address === "0:0:0:0:0:0:0:1";
}

const digest = (value: string) => createHash("sha256").update(value).digest();

function bearerMatches(authorization: string | null, token: string): boolean {
  const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  // Compared as digests: equal lengths, and a comparison whose time says nothing about the token.
  return match !== null && timingSafeEqual(digest(match[1]!), digest(token));
}

/** The access policy for one scrape, from the socket's address and the Authorization header. */
export function metricsAccess(token: string | undefined, address: string | undefined, authorization: string | null): MetricsAccess {
  if (token !== undefined) return bearerMatches(authorization, token) ? "allowed" : "refused";
  return address !== undefined && isLoopback(address) ? "allowed" : "hidden";
}

/** Whether a request URL's path is exactly /metrics (query aside), without parsing the URL. */
export function isMetricsPath(url: string): boolean {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0 || !url.startsWith("/metrics", start)) return false;
  const end = start + "/metrics".length;
  return url.length === end || url[end] === "?";
}

/** Whether the main port answers /metrics itself (it does not when METRICS_PORT gives it a listener). */
export const metricsOnMainPort = (config: Config) => config.metricsPort === undefined;

/** Answers one request for /metrics (GET or HEAD), after the access check. */
export async function answerMetrics(request: Request, address: string | undefined, config: Config): Promise<Response> {
  const context = { method: request.method, path: "/metrics" };
  const access = metricsAccess(config.metricsToken, address, request.headers.get("authorization"));
  if (access === "hidden") return errorResponse(fail.not_found("Route not found"), context);
  if (access === "refused") return errorResponse(fail.metrics_forbidden(), context);
  const headers = { "content-type": registry.contentType, "cache-control": "no-store" };
  return new Response(request.method === "HEAD" ? null : await registry.metrics(), { headers });
}

/** A request the main port's onRequest hands to `answerMetrics`. */
export function isScrape(request: Request, config: Config): boolean {
  return (request.method === "GET" || request.method === "HEAD") && metricsOnMainPort(config) && isMetricsPath(request.url);
}

/** The METRICS_PORT listener: /metrics only, everything else 404. */
export function startMetricsListener(config: Config): Server<undefined> | undefined {
  if (config.metricsPort === undefined) return undefined;
  const server = Bun.serve({
    port: config.metricsPort,
    hostname: config.host,
    fetch(request, server) {
      if ((request.method === "GET" || request.method === "HEAD") && isMetricsPath(request.url)) {
        return answerMetrics(request, server.requestIP(request)?.address, config);
      }
      return errorResponse(fail.not_found("Route not found"), { method: request.method });
    },
  });
  log.info("metrics listening", { port: server.port });
  return server;
}
