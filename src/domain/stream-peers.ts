/**
 * What a stream needs from the other instances (docs/streaming.md, Several instances). A stream lives in
 * the memory of the instance that created it (its holder); the others reach it through these requests,
 * which the realtime layer carries over the broker (src/realtime/stream-relay.ts):
 *
 * - an append or finish that reached another instance (REST behind a balancer) is forwarded to the holder,
 *   which applies it in arrival order and answers;
 * - an instance where a client joins or reads a stream it does not hold asks for the content so far, which
 *   the holder sends in order with the stream's deltas, so that the asker's copy (a mirror) and the deltas
 *   after it meet exactly;
 * - a run that changed state on one instance is told to all, so that its holder stops or resumes at once.
 */
import type { ErrorCode } from "../core/errors";
import type { RunResource } from "./resources";

export type StreamRequest =
  | { op: "append"; messageId: string; conversationId?: string; senderId: string; delta: string }
  | { op: "finish"; messageId: string; conversationId?: string; senderId: string; content?: string }
  | { op: "snapshot"; messageId: string; conversationId: string };

export type StreamAnswer =
  | { ok: true; value: unknown }
  | { ok: false; error: { code: ErrorCode; message: string; details?: Record<string, unknown> } };

export type RunStateChange = Pick<RunResource, "id" | "conversation_id" | "state">;

/** The other instances, as a stream sees them. */
export interface StreamPeers {
  /** Asks whichever instance holds the stream; undefined when none answered in time. */
  ask(request: Extract<StreamRequest, { op: "append" | "finish" }>): Promise<StreamAnswer | undefined>;
  /** Asks the holder for the content so far; true once the mirror is here (`StreamHolder.mirrorSeeded`). */
  snapshot(request: Extract<StreamRequest, { op: "snapshot" }>): Promise<boolean>;
  /** A run changed state here: its streams held elsewhere follow at once. */
  runChanged(run: RunStateChange): void;
  /** This instance as a stream's holder, as the others know it; undefined with no other instance possible. */
  holderId(): string | undefined;
  /** The instances alive now (this one included), or undefined while that is not known. */
  liveInstances(): string[] | undefined;
}

/** A single instance: nobody to ask. */
export const NO_STREAM_PEERS: StreamPeers = {
  ask: async () => undefined,
  snapshot: async () => false,
  runChanged() {},
  holderId: () => undefined,
  liveInstances: () => undefined,
};

/** What the instances' requests need of this instance's streams. */
export interface StreamHolder {
  /** Applies a forwarded append or finish; undefined when the stream is not held here. */
  answer(request: Extract<StreamRequest, { op: "append" | "finish" }>): Promise<StreamAnswer> | undefined;
  /** The content so far of a stream held here, undefined otherwise. */
  heldContent(messageId: string): string | undefined;
  /** The snapshot asked for arrived, in its place among the stream's deltas: mirror it from here on. */
  mirrorSeeded(messageId: string, conversationId: string, content: string): void;
  /** A relayed `message:delta` frame reached this instance's sockets. */
  deltaDelivered(messageId: string, offset: number, frame: string): void;
  /** Frames may have been missed (the broker reconnected): mirrors can no longer be trusted. */
  forgetMirrors(): void;
  /** A run changed state on another instance. */
  remoteRunChanged(run: RunStateChange): void;
  /** An instance is gone: the streams it held end as interrupted. */
  holderGone(instanceId: string): void;
}
