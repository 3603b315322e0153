/**
 * The console's one client of the server: the product's SDK, on this page's origin. It carries no token:
 * the session cookie set by login (HttpOnly, out of the scripts' reach) goes with every REST call and
 * with the WebSocket upgrade, which the server takes from its own origin only.
 */
import { ApiError, MessagingClient, RealtimeClient, RealtimeError, type PrincipalInfo } from "../client/index.ts";

export const client = new MessagingClient({ baseUrl: location.origin });

/** Signs in; the answer's Set-Cookie is the session. A client of its own, so that `client` never holds the token. */
export async function signIn(email: string, password: string): Promise<PrincipalInfo> {
  const { user } = await new MessagingClient({ baseUrl: location.origin }).login(email, password);
  return user;
}

/** One connection per signed-in page; reconnects quickly, since a console is watched as it happens. */
export function openRealtime(): RealtimeClient {
  return client.realtime({ reconnect: { initialDelayMs: 250, maxDelayMs: 3_000 } });
}

/** An error as words for the page: the server's `error` text, or what went wrong on the way. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError || error instanceof RealtimeError) return error.message;
  if (error instanceof TypeError) return `The server cannot be reached (${error.message})`;
  return error instanceof Error ? error.message : String(error);
}

export const isSystemAdmin = (user: PrincipalInfo) => user.isSuperAdmin || user.entitlements.includes("messaging:admin");

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * How a principal is named in the timeline: you, or their id (the API has no names or emails of others),
 * a user's UUID cut to its first eight characters. The participants list shows whole ids.
 */
export const nameOf = (id: string, self: PrincipalInfo) => (id === self.id ? "you" : UUID.test(id) ? `${id.slice(0, 8)}…` : id);

export const timeOf = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
