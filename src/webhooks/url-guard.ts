/**
 * Where a webhook may be sent: http(s) URLs whose host resolves only to public addresses. Loopback,
 * private, shared, link-local (cloud metadata services live there), multicast and unspecified addresses
 * are refused unless WEBHOOK_ALLOW_PRIVATE=true. Checked when an endpoint is registered or changed, and
 * again before every delivery (a name may resolve elsewhere later); redirects are never followed.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { fail } from "../core/errors";

const MAX_URL_LENGTH = 2000;

function ipv4Blocked(address: string): boolean {
  const [a, b] = address.split(".").map(Number);
  return (
    a === 0 || a === 10 || a === 127 || a >= 224 ||
    (a === 100 && b >= 64 && b <= 127) || // shared address space (carrier NAT)
    (a === 169 && b === 254) || // link-local, cloud metadata
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) || // IETF protocol assignments, 192.0.0.0/24 (and 192.0.2.0/24 documentation)
    (a === 198 && (b === 18 || b === 19)) // benchmarking
  );
}

function ipv6Blocked(address: string): boolean {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return ipv4Blocked(mapped[1]);
  if (lower === "::" || lower === "::1") return true;
  const first = parseInt(lower.split(":")[0] || "0", 16);
  return (
    (first & 0xfe00) === 0xfc00 || // unique local, fc00::/7 (fd00:ec2::254 is a metadata address)
    (first & 0xffc0) === 0xfe80 || // link-local
    (first & 0xff00) === 0xff00 || // multicast
    lower.startsWith("64:ff9b:") // NAT64 of any IPv4 address
  );
}

export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return ipv4Blocked(address);
  if (family === 6) return ipv6Blocked(address);
  return true;
}

/** Syntax only: what can be said without resolving the host. Returns the normalised URL. */
export function parseWebhookUrl(raw: string): URL {
  if (raw.length > MAX_URL_LENGTH) throw fail.invalid_webhook_url(`url is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw fail.invalid_webhook_url("url is not a valid URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw fail.invalid_webhook_url("url must be http:// or https://");
  if (url.username || url.password) throw fail.invalid_webhook_url("url must not carry credentials");
  url.hash = "";
  return url;
}

/** Resolves the host and refuses it when any of its addresses is not public (unless allowed). */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean): Promise<URL> {
  const url = parseWebhookUrl(raw);
  if (allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch {
      throw fail.invalid_webhook_url(`the host ${host} does not resolve`);
    }
  }
  if (addresses.length === 0 || addresses.some(isBlockedAddress)) {
    throw fail.webhook_url_forbidden("url resolves to a loopback, private, link-local or otherwise non-public address");
  }
  return url;
}
