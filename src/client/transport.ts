/**
 * The WebSocket the realtime client opens. Browsers, Bun, Deno and Node ≥ 22 have a global one; Node 20
 * does not, so the package's Node entry registers the `ws` package here instead. Only the shape the client
 * uses is typed, so that the SDK's declarations need neither the DOM library nor Node's types.
 */

export interface WebSocketLike {
  readonly readyState: number;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: the global one, `ws`, or any with the same constructor. */
export type WebSocketConstructor = new (url: string, options?: any) => WebSocketLike;

/**
 * How credentials travel on the upgrade: `header` (Authorization / X-API-Key, which Bun's WebSocket and
 * `ws` can set) or `query` (`?token=` / `?apiKey=`, the only way a browser can).
 */
export type CredentialTransport = "header" | "query";

let registered: { WebSocket: WebSocketConstructor; auth: CredentialTransport } | undefined;

/** Makes `WebSocket` the default implementation of every realtime client created afterwards. */
export function setDefaultWebSocket(WebSocket: WebSocketConstructor, auth: CredentialTransport): void {
  registered = { WebSocket, auth };
}

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

/** The implementation and credential transport to use when the caller named none. */
export function defaultWebSocket(): { WebSocket?: WebSocketConstructor; auth: CredentialTransport } {
  if (registered) return registered;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  // Bun's global WebSocket takes headers as a second-argument option; the others take only protocols.
  return { WebSocket: global, auth: isBun ? "header" : "query" };
}
