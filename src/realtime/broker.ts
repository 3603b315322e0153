/**
 * The seam between this instance's hub and the other instances of an installation.
 *
 * The hub hands every frame it delivers to its broker and never knows how (or whether) it travels; a
 * broker hands frames from other instances back through `BrokerHub`. Presence held on other instances is
 * read through the broker too. An implementation lives in a folder of its own under src/broker/ and is
 * chosen at start (src/broker/choose-broker.ts); the hub imports none of them.
 *
 * - `LocalBroker` (here): one instance, nothing to tell anyone; the embedded database and
 *   CLUSTER_FANOUT=off use it.
 * - `PostgresBroker` (src/broker/postgres/): LISTEN/NOTIFY on the shared PostgreSQL.
 */
import type { StreamAnswer, StreamRequest } from "../domain/stream-peers";
import type { PrincipalFrame, TopicFrame } from "./frames";
import type { PresenceEntry, PresentPrincipal } from "./presence";
import type { PresenceStatus } from "./frames";

/** A frame too large to travel inline: where the receiver reads it again. */
export type FrameReference =
  | { conversationId: string; messageId: string }
  | { conversationId: string; conversation: true }
  | { conversationId: string; sequence: number; revoke?: TopicFrame["revoke"] };

/**
 * Streams held by one instance and used from another (./stream-relay.ts): a request to whichever instance
 * holds the stream (a long text goes in parts), its answer to the asker, and a run's new state.
 */
export type StreamSignal =
  | { kind: "ask"; id: string; from: string; request: StreamRequest; part?: [index: number, count: number] }
  | { kind: "answer"; id: string; to: string; answer: StreamAnswer }
  | { kind: "run"; conversationId: string; runId: string; state: string };

/** What a broker may ask of the hub it serves. */
export interface BrokerHub {
  /** A frame another instance delivered: delivered here to local sockets, not sent on. */
  deliverRemote(frame: TopicFrame): void;
  /** A principal frame another instance delivered: sent here to the principal's local sockets only. */
  deliverRemoteToPrincipal(frame: PrincipalFrame): void;
  /** Rebuilds a principal frame too large to relay (`PrincipalFrame.reload`) from the database. */
  reloadPrincipalFrame(principalId: string, reload: NonNullable<PrincipalFrame["reload"]>): Promise<PrincipalFrame | undefined>;
  /** Reads a referenced frame back from the database. */
  reloadFrame(reference: FrameReference): Promise<TopicFrame | undefined>;
  /** Frames may have been missed (a lost connection, a peer that left frames out): bring sockets up to date. */
  catchUp(): Promise<void>;
  /** This instance's presence, for an instance that (re)started and lacks it. */
  localPresence(): Iterable<PresenceEntry>;
  /** Presence held by another instance changed for (conversation, principal). */
  remotePresenceChanged(conversationId: string, userId: string, userType: string): void;
  /** An instance went silent (killed, cut off) or said goodbye: what it held is nobody's now. */
  instanceGone(instanceId: string): void;
  /** A stream signal another instance sent. */
  streamSignal(signal: StreamSignal): void;
}

export interface Broker {
  readonly name: string;
  /** This instance, as the others know it. */
  readonly instanceId: string;
  /** Connects; from then on remote frames reach `hub`. */
  start(hub: BrokerHub): Promise<void>;
  /** A frame this instance delivered to its own sockets, for the other instances. */
  publish(frame: TopicFrame): void;
  /** A frame for every connection of a principal, delivered here to its own sockets, for the other instances. */
  publishToPrincipal(frame: PrincipalFrame): void;
  /** This instance's presence changed for (conversation, principal): tell the others. */
  announcePresence(entry: PresenceEntry): void;
  /** The status of a principal present in a conversation on another instance, if any. */
  remoteStatusIn(conversationId: string, principalId: string): PresenceStatus | undefined;
  /** Principals present in a conversation on other instances. */
  remotePresentIn(conversationId: string): PresentPrincipal[];
  /** Other instances known now (ids). */
  peers(): string[];
  /** Other live instances, or undefined while that cannot be known (just started, reconnecting, no broker). */
  livePeers(): string[] | undefined;
  /** A stream signal for the other instances, sent after the frames published before it. */
  signalStreams(signal: StreamSignal): void;
  stop(): Promise<void>;
}

/** A single instance: frames stay here, and nobody else holds presence. */
export class LocalBroker implements Broker {
  readonly name = "local";
  readonly instanceId = "local";
  async start(): Promise<void> {}
  publish(): void {}
  publishToPrincipal(): void {}
  announcePresence(): void {}
  remoteStatusIn(): PresenceStatus | undefined {
    return undefined;
  }
  remotePresentIn(): PresentPrincipal[] {
    return [];
  }
  peers(): string[] {
    return [];
  }
  livePeers(): string[] | undefined {
    return undefined;
  }
  signalStreams(): void {}
  async stop(): Promise<void> {}
}
