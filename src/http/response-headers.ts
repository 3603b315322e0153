/**
 * Headers every answer carries, and the request-header limit. They are set first thing in onRequest,
 * so answers built from the context (handlers' values, mapped errors) carry them; answers built as a
 * Response of their own get them where they are made, through `withSecurityHeaders`.
 */
import { fail } from "../core/errors";
import { errorResponse } from "./error-response";

/** No MIME sniffing, no Referer to other sites, no framing (the docs page says the same in its CSP). */
export const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/**
 * Bun refuses request headers over 16 KiB itself, with a bare 431 and no body. Below that, the server
 * refuses over this many bytes with a JSON 431, so that clients of ordinary size learn what went wrong.
 */
export const MAX_HEADER_BYTES = 12 * 1024;

function headerBytes(headers: Headers): number {
  let total = 0;
  headers.forEach((value, name) => {
    total += name.length + value.length + 4;
  });
  return total;
}

export function withSecurityHeaders(headers: Record<string, string>): Record<string, string> {
  return { ...SECURITY_HEADERS, ...headers };
}

export function edgeHeaders({ request, set }: { request: Request; set: { headers: Record<string, string | number> } }): Response | undefined {
  Object.assign(set.headers, SECURITY_HEADERS);
  if (headerBytes(request.headers) > MAX_HEADER_BYTES) {
    return errorResponse(fail.headers_too_large(`Request headers exceed ${MAX_HEADER_BYTES} bytes`), {}, withSecurityHeaders({}));
  }
  return undefined;
}
