/**
 * Presence of principals in the conversations they watch.
 *
 * A principal's status (online, away, busy, offline) is one value shared by all its connections. It is
 * told only to conversations the principal has joined as a participant: a stranger never learns it, and
 * an admin watching read-only stays invisible. A principal is present in a conversation while at least
 * one of its connections has joined it; when the last such connection leaves or closes, the
 * conversation hears `offline`. So two tabs of one user produce one `offline`, after the second closes.
 */
import type { Connection } from "./connection";
import { presenceFrame, type PresenceStatus, type TopicFrame } from "./frames";

export interface PresenceView {
  /** Open connections of a principal. */
  connectionsOf(principalId: string): Iterable<Connection>;
  /** Connections subscribed to a conversation. */
  subscribersOf(conversationId: string): Iterable<Connection>;
  publish(frame: TopicFrame): void;
}

export interface PresentPrincipal {
  userId: string;
  userType: string;
  status: PresenceStatus;
}

export class Presence {
  private readonly statuses = new Map<string, PresenceStatus>();

  constructor(private readonly view: PresenceView) {}

  statusOf(principalId: string): PresenceStatus {
    return this.statuses.get(principalId) ?? "online";
  }

  /** Called after `connection` joined the conversation as a participant. */
  joined(connection: Connection, conversationId: string): void {
    if (this.presentElsewhere(connection, conversationId)) return;
    this.tell(connection, conversationId, this.statusOf(connection.principal.id));
  }

  /** Called after `connection` stopped watching the conversation (left, or is closing). */
  left(connection: Connection, conversationId: string, wasObserver: boolean): void {
    if (wasObserver || this.presentElsewhere(connection, conversationId)) return;
    this.tell(connection, conversationId, "offline");
  }

  /** A new status from one connection: every conversation the principal is present in hears it. */
  update(connection: Connection, status: PresenceStatus): void {
    const principalId = connection.principal.id;
    this.statuses.set(principalId, status);
    for (const conversationId of this.conversationsOf(principalId)) this.tell(connection, conversationId, status);
  }

  /** Called after a connection closed and left everything: forget the status with the last connection. */
  closed(principalId: string): void {
    for (const _ of this.view.connectionsOf(principalId)) return;
    this.statuses.delete(principalId);
  }

  /** Who is present in a conversation now (participants only), for a joining client. */
  snapshot(conversationId: string): PresentPrincipal[] {
    const present = new Map<string, PresentPrincipal>();
    for (const connection of this.view.subscribersOf(conversationId)) {
      const { principal } = connection;
      if (connection.joined.get(conversationId)?.observer !== false || present.has(principal.id)) continue;
      present.set(principal.id, { userId: principal.id, userType: principal.type, status: this.statusOf(principal.id) });
    }
    return [...present.values()];
  }

  private conversationsOf(principalId: string): Set<string> {
    const conversations = new Set<string>();
    for (const connection of this.view.connectionsOf(principalId)) {
      for (const [conversationId, joined] of connection.joined) if (!joined.observer) conversations.add(conversationId);
    }
    return conversations;
  }

  private presentElsewhere(connection: Connection, conversationId: string): boolean {
    for (const other of this.view.connectionsOf(connection.principal.id)) {
      if (other !== connection && !other.closed && other.joined.get(conversationId)?.observer === false) return true;
    }
    return false;
  }

  private tell(connection: Connection, conversationId: string, status: PresenceStatus): void {
    const { principal } = connection;
    this.view.publish({
      conversationId,
      frame: presenceFrame(conversationId, principal.id, principal.type, status),
      exceptConnectionId: connection.id,
    });
  }
}
