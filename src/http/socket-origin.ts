/**
 * Cross-site WebSocket hijacking: a browser sends the session cookie with a socket opened by any page,
 * and WebSockets have no same-origin rule. So when the cookie is the credential, the upgrade is taken
 * only from this server's own origin (PUBLIC_URL, or the Host the request was sent to) and from
 * ALLOWED_ORIGINS. Header and query credentials are not sent by a browser on its own, and are unaffected.
 * A request without Origin is no browser's (they always send one on a socket) and is let through.
 */
import type { Config } from "../config";

export function socketOriginAllowed(headers: Headers, config: Pick<Config, "publicUrl" | "allowedOrigins">): boolean {
  const origin = headers.get("origin");
  if (origin === null) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false; // includes "null", sent by sandboxed and file pages
  }
  const normalised = parsed.origin.toLowerCase();
  if (config.allowedOrigins.includes(normalised)) return true;
  if (config.publicUrl) return new URL(config.publicUrl).origin.toLowerCase() === normalised;
  const host = headers.get("host");
  return host !== null && parsed.host.toLowerCase() === host.toLowerCase();
}
