/**
 * What instances say to each other on `symbia_events`. Short keys: every byte counts against the
 * 8,000-byte NOTIFY payload.
 */
import type { PresenceStatus, PrincipalFrame, TopicFrame } from "../../realtime/frames";
import type { FrameReference, StreamSignal } from "../../realtime/broker";
import type { StreamSnapshotPart } from "../../realtime/frames";

export type RelayItem =
  | {
      k: "f";
      c: string;
      /** The frame itself, or absent when it is to be reloaded (`s`, `m` or `cv`). */
      f?: string;
      s?: number;
      r?: TopicFrame["revoke"];
      /** Reload the message with this id (an update too large to inline). */
      m?: string;
      /** Reload the conversation (an update too large to inline). */
      cv?: 1;
      /** A delta frame's stream, offset and end (receivers need not parse the frame to know them). */
      d?: [messageId: string, offset: number, end: number];
      /** A part of a stream's content so far, for the instance that asked (no frame for sockets). */
      ss?: StreamSnapshotPart;
    }
  /** A stream signal (src/realtime/stream-relay.ts). */
  | { k: "s"; s: StreamSignal }
  /**
   * A frame for every connection of principal `u`; without `f` (too large) it is rebuilt from
   * conversation `c` with role `ro`. `o`: the organisation of the conversation it tells of, when known.
   */
  | { k: "u"; u: string; f?: string; c?: string; ro?: string; o?: string }
  | { k: "p"; c: string; u: string; t: string; st?: PresenceStatus }
  | { k: "hb" }
  | { k: "sync" }
  /**
   * Sent on hearing from an instance for the first time (or again after forgetting it). `w`: the sender
   * left sequenced frames out since its last greeting (it was alone): whoever hears it catches up.
   */
  | { k: "hi"; w?: 1 }
  | { k: "bye" };

export type FrameItem = Extract<RelayItem, { k: "f" }>;

/**
 * A frame as an item: inline when it fits, otherwise a reference the receiver reloads from the database.
 * Undefined when it neither fits nor can be reloaded (a frame without a sequence or a reload hint).
 */
export function frameItem(frame: TopicFrame, inlineLimitBytes: number): FrameItem | undefined {
  const item: FrameItem = { k: "f", c: frame.conversationId, s: frame.sequence, r: frame.revoke };
  if (frame.delta) item.d = [frame.delta.messageId, frame.delta.offset, frame.delta.end];
  if (frame.streamSnapshot) item.ss = frame.streamSnapshot;
  if (Buffer.byteLength(frame.frame) <= inlineLimitBytes) item.f = frame.frame;
  else if (frame.reload && "messageId" in frame.reload) item.m = frame.reload.messageId;
  else if (frame.reload) item.cv = 1;
  else if (frame.sequence === undefined) return undefined;
  return item;
}

/** A received frame item: the frame, or where to reload it. */
export function frameOfItem(item: FrameItem): { frame: TopicFrame } | { reference: FrameReference } {
  if (item.f !== undefined) {
    const frame: TopicFrame = { conversationId: item.c, frame: item.f, sequence: item.s, revoke: item.r };
    if (item.d) frame.delta = { messageId: item.d[0], offset: item.d[1], end: item.d[2] };
    if (item.ss) frame.streamSnapshot = item.ss;
    return { frame };
  }
  if (item.m) return { reference: { conversationId: item.c, messageId: item.m } };
  if (item.cv) return { reference: { conversationId: item.c, conversation: true } };
  return { reference: { conversationId: item.c, sequence: item.s ?? 0, revoke: item.r } };
}

export type PrincipalItem = Extract<RelayItem, { k: "u" }>;

/** A principal frame as an item: inline when it fits, else what rebuilds it; undefined when neither. */
export function principalItem(frame: PrincipalFrame, inlineLimitBytes: number): PrincipalItem | undefined {
  const org = frame.orgId !== undefined ? { o: frame.orgId } : {};
  if (Buffer.byteLength(frame.frame) <= inlineLimitBytes) return { k: "u", u: frame.principalId, f: frame.frame, ...org };
  if (frame.reload) return { k: "u", u: frame.principalId, c: frame.reload.conversationId, ro: frame.reload.role, ...org };
  return undefined;
}
