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
  return new Elysia({ name: "realtime", tags: ["realtime"] })
    .use(requestContext)
    .ws("/api/ws", {
      detail: { summary: "WebSocket upgrade; the wire protocol is docs/protocol.md in the repository" },
      open(ws) {
        hub.open(ws.raw as unknown as RealtimeSocket, ws.data as unknown as UpgradeContext);
      },
      message(ws, message) {
        const connection = hub.connectionOf(ws.raw);
        if (connection) receiveFrame(hub, services, connection, message);
      },
      close(ws, code) {
        hub.closed(ws.raw, code);
      },
    });
}
