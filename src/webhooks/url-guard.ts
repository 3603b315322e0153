/**
 * Where a webhook may be sent: http(s) URLs whose host resolves only to public addresses. Loopback,
 * private, shared, link-local (cloud metadata services live there), multicast, unspecified and other
 * special-purpose addresses are refused, in either family and inside IPv6 forms that embed an IPv4
 * address, unless WEBHOOK_ALLOW_PRIVATE=true. Checked when an endpoint is registered or changed, and
 * again before every delivery (a name may resolve elsewhere later), which then connects to the address
 * checked rather than resolving the name anew; redirects are never followed.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { fail } from "../core/errors";

const MAX_URL_LENGTH = 2000;

function ipv4Blocked(address: string): boolean {
  const [a, b, c] = address.split(".").map(Number);
  return (
    a === 0 || a === 10 || a === 127 || a >= 224 || // 224/4 multicast, 240/4 reserved and broadcast
    (a === 100 && b >= 64 && b <= 127) || // shared address space (carrier NAT)
    (a === 169 && b === 254) || // link-local, cloud metadata
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0 && (c === 0 || c === 2)) || // IETF protocol assignments 192.0.0/24, documentation 192.0.2/24
    (a === 192 && b === 88 && c === 99) || // 6to4 relay anycast: a gateway into someone's IPv6 network
    (a === 198 && (b === 18 || b === 19)) || // benchmarking
    (a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113) // documentation
  );
}

/** Colon-separated hex groups without `::`; undefined when one is not 1 to 4 hex digits. */
function hexGroups(text: string): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  return parts.every((part) => /^[0-9a-f]{1,4}$/.test(part)) ? parts.map((part) => parseInt(part, 16)) : undefined;
}

/** An IPv6 address as its 8 groups: `::` expanded, a trailing dotted IPv4 part made the last two. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    if (isIP(dotted[2]) !== 4) return undefined;
    const [a, b, c, d] = dotted[2].split(".").map(Number);
    text = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = hexGroups(halves[0]);
  const tail = halves.length === 2 ? hexGroups(halves[1]) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const zeros = 8 - head.length - tail.length;
  return zeros >= 1 ? [...head, ...new Array<number>(zeros).fill(0), ...tail] : undefined;
}

/** The IPv4 address two groups carry, judged as such. */
function embeddedIpv4Blocked(high: number, low: number): boolean {
  return ipv4Blocked(`${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`);
}

function ipv6Blocked(address: string): boolean {
  const g = ipv6Groups(address);
  if (!g) return true;
  const zero = (from: number, to: number) => g.slice(from, to).every((group) => group === 0);
  // Forms that reach an IPv4 address: refused when that address would be.
  if (zero(0, 5) && g[5] === 0xffff) return embeddedIpv4Blocked(g[6], g[7]); // mapped, ::ffff:0:0/96
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return embeddedIpv4Blocked(g[6], g[7]); // translated, ::ffff:0:0:0/96
  if (zero(0, 6)) return embeddedIpv4Blocked(g[6], g[7]); // compatible, ::/96: :: and ::1 are 0.0.0.0 and 0.0.0.1
  if (g[0] === 0x2002) return embeddedIpv4Blocked(g[1], g[2]); // 6to4, 2002::/16
  return (
    (g[0] === 0x64 && g[1] === 0xff9b && (zero(2, 6) || g[2] === 1)) || // NAT64 of any IPv4 address, 64:ff9b::/96 and local-use 64:ff9b:1::/48
    (g[0] === 0x2001 && g[1] === 0) || // Teredo, 2001::/32: tunnels to an IPv4 address that cannot be judged from here
    (g[0] === 0x2001 && g[1] === 0xdb8) || // documentation
    (g[0] === 0x100 && zero(1, 4)) || // discard, 100::/64
    (g[0] & 0xfe00) === 0xfc00 || // unique local, fc00::/7 (fd00:ec2::254 is a metadata address)
    (g[0] & 0xffc0) === 0xfe80 || // link-local
    (g[0] & 0xffc0) === 0xfec0 || // site-local, deprecated but still routed by some networks
    (g[0] & 0xff00) === 0xff00 // multicast
  );
}

export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return ipv4Blocked(address);
  if (family === 6) return ipv6Blocked(address);
  return true;
}

/** A URL's host as an address or name, without the brackets of an IPv6 literal. */
export function bareHostname(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, "");
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

async function resolve(host: string): Promise<string[]> {
  try {
    return (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw fail.invalid_webhook_url(`the host ${host} does not resolve${typeof code === "string" ? ` (${code})` : ""}`);
  }
}

/**
 * Deliveries reuse a name's answer this long: a check before every delivery must not be a DNS query
 * before every delivery (one can take hundreds of milliseconds, and a pair delivers one event at a time).
 * Safe because the connection goes to the addresses checked, never to a later answer for the name.
 */
const REUSE_ANSWER_MS = 30_000;
const MAX_REUSED_ANSWERS = 10_000;
const answers = new Map<string, { addresses: Promise<string[]>; until: number }>();

/** The name's addresses, asked at most once per REUSE_ANSWER_MS (and once for lookups under way). */
function resolveReusing(host: string): Promise<string[]> {
  const now = Date.now();
  const known = answers.get(host);
  if (known && known.until > now) return known.addresses;
  if (answers.size >= MAX_REUSED_ANSWERS) answers.clear();
  const addresses = resolve(host);
  answers.set(host, { addresses, until: now + REUSE_ANSWER_MS });
  // A failure is not reused: the next delivery asks again.
  addresses.catch(() => answers.delete(host));
  return addresses;
}

/** Forgets the answers kept for deliveries. */
export function forgetResolvedNames(): void {
  answers.clear();
}

/**
 * The addresses a URL's host stands for (an IP literal is its own), all of them public. Throws
 * `invalid_webhook_url` when the name does not resolve, `webhook_url_forbidden` when any address is refused.
 * `reuse`: an answer up to REUSE_ANSWER_MS old will do (deliveries); otherwise the name is asked now
 * (registration and changes).
 */
export async function allowedAddresses(url: URL, options: { reuse?: boolean } = {}): Promise<string[]> {
  const host = bareHostname(url);
  const addresses = isIP(host) ? [host] : await (options.reuse ? resolveReusing(host) : resolve(host));
  if (addresses.length === 0) throw fail.invalid_webhook_url(`the host ${host} does not resolve`);
  if (addresses.some(isBlockedAddress)) {
    throw fail.webhook_url_forbidden("url resolves to a loopback, private, link-local or otherwise non-public address");
  }
  return addresses;
}

/** Parses the URL and, unless private addresses are allowed, resolves the host and refuses it when any address is not public. */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean): Promise<URL> {
  const url = parseWebhookUrl(raw);
  if (!allowPrivate) await allowedAddresses(url);
  return url;
}
