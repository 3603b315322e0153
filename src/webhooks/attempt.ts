/**
 * One HTTP attempt of one delivery, and what its outcome means: delivered, retry (after how long), or
 * failed for good. No redirects, a bounded time for the whole exchange and a bounded response read.
 */
import { isIP } from "node:net";
import { AppError } from "../core/errors";
import { SERVICE_NAME, VERSION } from "../version";
import { allowedAddresses, bareHostname, parseWebhookUrl } from "./url-guard";
import { signatureHeader } from "./signing";

/** At most this much of a response is read (and a little of it kept, for the delivery log). */
const MAX_RESPONSE_BYTES = 64 * 1024;
const KEPT_RESPONSE_CHARS = 500;

export interface AttemptRequest {
  url: string;
  deliveryId: string;
  body: string;
  secrets: string[];
  timeoutMs: number;
  allowPrivate: boolean;
}

export type AttemptOutcome =
  | { kind: "delivered"; status: number }
  /** `retryAfterMs`: what the receiver asked for (429/503 with Retry-After). */
  | { kind: "retry"; status?: number; error: string; retryAfterMs?: number }
  | { kind: "failed"; status?: number; error: string }
  /** The endpoint itself must stop: 410 Gone, or its address is no longer allowed. */
  | { kind: "disable"; status?: number; error: string };

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

async function readBounded(response: Response): Promise<string> {
  if (!response.body) return "";
  // A small answer of announced length is read whole (no stream machinery per delivery).
  const length = Number(response.headers.get("content-length"));
  if (response.headers.has("content-length") && Number.isInteger(length) && length <= MAX_RESPONSE_BYTES) {
    return length === 0 ? "" : (await response.text()).slice(0, KEPT_RESPONSE_CHARS);
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < MAX_RESPONSE_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, KEPT_RESPONSE_CHARS * 4)).slice(0, KEPT_RESPONSE_CHARS);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A refused address is lasting; a name that does not resolve now may resolve on a later attempt. */
function guardOutcome(error: unknown): AttemptOutcome {
  if (error instanceof AppError && error.code === "webhook_url_forbidden") return { kind: "disable", error: messageOf(error) };
  return { kind: "retry", error: messageOf(error) };
}

type PostInit = RequestInit & { headers: Record<string, string> };

/** Connection errors that mean nothing reached that address, so another address of the name may be tried. */
const UNREACHABLE = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH"]);

function unreachable(error: unknown): boolean {
  return UNREACHABLE.has(String((error as { code?: unknown }).code));
}

/** The URL with its host replaced by the address, so that fetch does not resolve the name again. */
function pinnedUrl(url: URL, address: string): string {
  const host = isIP(address) === 6 ? `[${address}]` : address;
  return `${url.protocol}//${host}${url.port ? `:${url.port}` : ""}${url.pathname}${url.search}`;
}

/**
 * The name still travels in Host and, over TLS, as SNI; Bun verifies the certificate against `serverName`
 * (not the address), and keeps such connections alive, which a checkServerIdentity callback would not.
 */
function pinnedInit(url: URL, init: PostInit): BunFetchRequestInit {
  const pinned: BunFetchRequestInit = { ...init, headers: { ...init.headers, host: url.host } };
  if (url.protocol === "https:") pinned.tls = { serverName: url.hostname };
  return pinned;
}

/** Tries the addresses in turn, moving on only while one cannot be reached at all. */
async function fetchPinned(url: URL, init: PostInit, addresses: string[]): Promise<Response> {
  const [address, ...others] = addresses;
  try {
    return await fetch(pinnedUrl(url, address), pinnedInit(url, init));
  } catch (error) {
    if (others.length === 0 || init.signal?.aborted || !unreachable(error)) throw error;
    return fetchPinned(url, init, others);
  }
}

/**
 * One POST to `request.url` and what its answer means. With `addresses` (already checked), the connection
 * goes to them (a non-empty list) instead of to whatever the name resolves to now; without, fetch resolves
 * the name.
 */
export async function deliverAttempt(request: AttemptRequest, addresses?: string[]): Promise<AttemptOutcome> {
  const now = new Date();
  let response: Response;
  const signal = AbortSignal.timeout(request.timeoutMs);
  const init: PostInit = {
    method: "POST",
    redirect: "manual",
    signal,
    headers: {
      "content-type": "application/json",
      "user-agent": `${SERVICE_NAME}/${VERSION} webhooks`,
      "webhook-id": request.deliveryId,
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": signatureHeader(request.secrets, request.deliveryId, now, request.body),
    },
    body: request.body,
  };
  try {
    response = await (addresses ? fetchPinned(new URL(request.url), init, addresses) : fetch(request.url, init));
  } catch (error) {
    const timedOut = signal.aborted;
    return { kind: "retry", error: timedOut ? `no answer within ${request.timeoutMs} ms` : `connection failed: ${messageOf(error)}` };
  }
  let excerpt = "";
  try {
    excerpt = await readBounded(response);
  } catch {
    // The status is what counts; a body cut short (or too slow, past the timeout) changes nothing.
  }
  const { status } = response;
  const said = excerpt ? `: ${excerpt}` : "";
  if (status >= 200 && status < 300) return { kind: "delivered", status };
  if (status === 410) return { kind: "disable", status, error: "the endpoint answered 410 Gone" };
  if (status === 429 || status >= 500) {
    return { kind: "retry", status, error: `HTTP ${status}${said}`, retryAfterMs: retryAfterMs(response.headers.get("retry-after")) };
  }
  if (status >= 300 && status < 400) return { kind: "failed", status, error: `HTTP ${status}: redirects are not followed` };
  return { kind: "failed", status, error: `HTTP ${status}${said}` };
}

/** The promise's answer, or an error after `ms` (the lookup goes on, and its answer is kept for the next attempt). */
function withinTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Checks the URL, then sends. The connection goes to the addresses just checked, not to what the name
 * resolves to a moment later (DNS rebinding); with private addresses allowed nothing is resolved here.
 */
export async function attemptDelivery(request: AttemptRequest): Promise<AttemptOutcome> {
  let url: URL;
  try {
    url = parseWebhookUrl(request.url);
  } catch (error) {
    return { kind: "disable", error: messageOf(error) };
  }
  if (request.allowPrivate) return deliverAttempt(request);
  let addresses: string[];
  try {
    addresses = await withinTimeout(allowedAddresses(url, { reuse: true }), request.timeoutMs, `the host ${url.hostname} did not resolve within ${request.timeoutMs} ms`);
  } catch (error) {
    return guardOutcome(error);
  }
  return deliverAttempt(request, isIP(bareHostname(url)) ? undefined : addresses);
}
