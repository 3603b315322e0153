/**
 * Names of the WebSocket events (docs/protocol.md). Bootstrap and the docs list them from here, and the
 * realtime layer dispatches on them. Control event names come from the domain's one list.
 */
import { CONTROL_EVENTS } from "../domain/control-events";

export const CLIENT_EVENTS = [
  "join:conversation",
  "leave:conversation",
  "message:send",
  "message:edit",
  "message:delete",
  "control:send",
  "message:append",
  "message:finish",
  "typing:start",
  "typing:stop",
  "presence:update",
  "ping",
] as const;


export const SERVER_EVENTS = [
  "session:ready",
  "ack",
  "error",
  "pong",
  "message:new",
  "message:updated",
  "message:deleted",
  "message:delta",
  "typing:started",
  "typing:stopped",
  "presence:changed",
  ...CONTROL_EVENTS,
  "participant:joined",
  "participant:left",
  "participant:updated",
  "conversation:updated",
  "conversation:deleted",
  "run:started",
  "run:ended",
  "conversation:added",
  "conversation:removed",
] as const;

export type ClientEvent = (typeof CLIENT_EVENTS)[number];
export type ServerEvent = (typeof SERVER_EVENTS)[number];
