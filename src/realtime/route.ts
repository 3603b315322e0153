/**
 * GET /api/ws: the WebSocket endpoint. The request gate has authenticated the upgrade (401 before any
 * socket otherwise) and the request context carries its principal and scope into the socket's data.
 */
import { Elysia } from "elysia";
import { requestContext } from "../http/context";
import { receiveFrame } from "./dispatch";
import type { RealtimeSocket } from "./connection";
import type { RealtimeHub, UpgradeContext } from "./hub";
import type { Services } from "../services";

export function realtimeModule(hub: RealtimeHub, services: Services) {
  type Socket = { raw: unknown; data: unknown };
  const handlers = {
    open(ws: Socket) {
      hub.open(ws.raw as RealtimeSocket, ws.data as UpgradeContext);
    },
    message(ws: Socket, message: unknown) {
      const connection = hub.connectionOf(ws.raw as RealtimeSocket);
      if (connection) receiveFrame(hub, services, connection, message);
    },
    close(ws: Socket, code: number) {
      hub.closed(ws.raw as RealtimeSocket, code);
    },
  };
  return (
    new Elysia({ name: "realtime", tags: ["realtime"] })
      .use(requestContext)
      .ws("/api/ws", { detail: { summary: "WebSocket upgrade; the wire protocol is docs/protocol.md in the repository" }, ...handlers })
      // With a trailing slash too, as the request gate treats both alike.
      .ws("/api/ws/", { detail: { hide: true }, ...handlers })
  );
}
