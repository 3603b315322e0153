/**
 * Presence of principals in the conversations they watch.
 *
 * A principal's status (online, away, busy, offline) is one value shared by all its connections. It is
 * told only to conversations the principal has joined as a participant: a stranger never learns it, and
 * an admin watching read-only stays invisible. A principal is present in a conversation while at least
 * one of its connections has joined it, on this instance or on another one; when the last such connection
 * anywhere leaves or closes, the conversation hears `offline`. So two tabs of one user produce one
 * `offline`, after the second closes.
 *
 * With several instances, each instance announces its local presence per (conversation, principal) and
 * learns the others (through the broker, src/realtime/broker.ts). Every instance tells its own subscribers each change of the
 * combined view, once: presence frames are computed on each instance, never relayed as frames, so that a
 * change seen by two instances at once (two tabs closing on two machines) still yields one `offline` per
 * watcher.
 */
import type { Connection } from "./connection";
import { presenceFrame, type PresenceStatus, type TopicFrame } from "./frames";

export interface PresenceView {
  /** Open connections of a principal. */
  connectionsOf(principalId: string): Iterable<Connection>;
  /** Connections subscribed to a conversation. */
  subscribersOf(conversationId: string): Iterable<Connection>;
  /** Publishes to this instance's subscribers only. */
  publish(frame: TopicFrame): void;
}

/** One principal's presence in one conversation on one instance, as announced across instances. */
export interface PresenceEntry {
  conversationId: string;
  userId: string;
  userType: string;
  /** undefined: no longer present there. */
  status?: PresenceStatus;
}

/** Presence on the other instances; absent on a single instance. */
export interface RemotePresence {
  /** The status of a principal present in a conversation on some other instance, if any. */
  statusIn(conversationId: string, principalId: string): PresenceStatus | undefined;
  presentIn(conversationId: string): PresentPrincipal[];
  /** Tells the other instances about a change of this instance's local presence. */
  announce(entry: PresenceEntry): void;
}

export interface PresentPrincipal {
  userId: string;
  userType: string;
  status: PresenceStatus;
}

const key = (conversationId: string, principalId: string) => `${conversationId} ${principalId}`;

export class Presence {
  private readonly statuses = new Map<string, PresenceStatus>();
  /** What this instance last told its subscribers, per conversation and principal. */
  private readonly told = new Map<string, PresenceStatus>();
  remote?: RemotePresence;

  constructor(private readonly view: PresenceView) {}

  statusOf(principalId: string): PresenceStatus {
    return this.statuses.get(principalId) ?? "online";
  }

  /** Called after `connection` joined the conversation as a participant. */
  joined(connection: Connection, conversationId: string): void {
    this.localChange(connection, conversationId);
  }

  /** Called after `connection` stopped watching the conversation (left, or is closing). */
  left(connection: Connection, conversationId: string, wasObserver: boolean): void {
    if (wasObserver) return;
    this.localChange(connection, conversationId);
  }

  /** A new status from one connection: every conversation the principal is present in hears it. */
  update(connection: Connection, status: PresenceStatus): void {
    const principalId = connection.principal.id;
    this.statuses.set(principalId, status);
    for (const conversationId of this.conversationsOf(principalId)) this.localChange(connection, conversationId);
  }

  /** Called after a connection closed and left everything: forget the status with the last connection. */
  closed(principalId: string): void {
    for (const _ of this.view.connectionsOf(principalId)) return;
    this.statuses.delete(principalId);
  }

  /** Another instance's presence changed (or expired): tell this instance's subscribers what changed. */
  remoteChanged(conversationId: string, userId: string, userType: string): void {
    this.reconcile(conversationId, userId, userType);
  }

  /** Who is present in a conversation now (participants only, on every instance), for a joining client. */
  snapshot(conversationId: string): PresentPrincipal[] {
    const present = new Map<string, PresentPrincipal>();
    for (const connection of this.view.subscribersOf(conversationId)) {
      const { principal } = connection;
      if (connection.joined.get(conversationId)?.observer !== false || present.has(principal.id)) continue;
      present.set(principal.id, { userId: principal.id, userType: principal.type, status: this.statusOf(principal.id) });
    }
    for (const entry of this.remote?.presentIn(conversationId) ?? []) {
      if (!present.has(entry.userId)) present.set(entry.userId, entry);
    }
    return [...present.values()];
  }

  private localChange(connection: Connection, conversationId: string): void {
    const { principal } = connection;
    this.remote?.announce({
      conversationId,
      userId: principal.id,
      userType: principal.type,
      status: this.presentHere(principal.id, conversationId) ? this.statusOf(principal.id) : undefined,
    });
    this.reconcile(conversationId, principal.id, principal.type, connection.id);
  }

  /** Publishes the combined status of a principal in a conversation if it differs from what was told. */
  private reconcile(conversationId: string, principalId: string, userType: string, exceptConnectionId?: string): void {
    const status = this.presentHere(principalId, conversationId)
      ? this.statusOf(principalId)
      : (this.remote?.statusIn(conversationId, principalId) ?? "offline");
    const k = key(conversationId, principalId);
    if ((this.told.get(k) ?? "offline") === status) return;
    if (status === "offline") this.told.delete(k);
    else this.told.set(k, status);
    this.view.publish({ conversationId, frame: presenceFrame(conversationId, principalId, userType, status), exceptConnectionId });
  }

  private conversationsOf(principalId: string): Set<string> {
    const conversations = new Set<string>();
    for (const connection of this.view.connectionsOf(principalId)) {
      for (const [conversationId, joined] of connection.joined) if (!joined.observer) conversations.add(conversationId);
    }
    return conversations;
  }

  private presentHere(principalId: string, conversationId: string): boolean {
    for (const connection of this.view.connectionsOf(principalId)) {
      if (!connection.closed && connection.joined.get(conversationId)?.observer === false) return true;
    }
    return false;
  }

  /** The conversation is gone: nothing more is told about it. */
  forgetConversation(conversationId: string): void {
    for (const k of this.told.keys()) if (k.startsWith(conversationId + " ")) this.told.delete(k);
  }
}
