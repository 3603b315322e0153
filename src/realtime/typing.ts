/**
 * Typing indicators with server-side expiry: a `typing:start` with no `typing:stop` ends by itself after
 * the TTL, so a client that vanishes mid-sentence never leaves others watching a typing indicator forever.
 * Indicators go to the conversation's topic, never back to the connection that typed.
 */
import type { Connection } from "./connection";
import { typingFrame, type TopicFrame } from "./frames";

interface Typist {
  conversationId: string;
  principalId: string;
  userType: string;
  connectionId: string;
  timer: ReturnType<typeof setTimeout>;
}

export class TypingIndicators {
  /** Keyed by conversation and principal: one indicator per person, whichever tab types. */
  private readonly typists = new Map<string, Typist>();

  constructor(
    private readonly ttlMs: number,
    private readonly publish: (frame: TopicFrame) => void,
  ) {}

  start(connection: Connection, conversationId: string): void {
    const key = `${conversationId} ${connection.principal.id}`;
    const current = this.typists.get(key);
    if (current) {
      clearTimeout(current.timer);
      current.connectionId = connection.id;
      current.timer = this.expireLater(key);
      return;
    }
    this.typists.set(key, {
      conversationId,
      principalId: connection.principal.id,
      userType: connection.principal.type,
      connectionId: connection.id,
      timer: this.expireLater(key),
    });
    this.announce("typing:started", conversationId, connection.principal.id, connection.principal.type, connection.id);
  }

  stop(connection: Connection, conversationId: string): void {
    this.end(`${conversationId} ${connection.principal.id}`, true);
  }

  /** The connection closed: whatever it was typing stops. */
  stopConnection(connection: Connection): void {
    for (const [key, typist] of this.typists) if (typist.connectionId === connection.id) this.end(key, true);
  }

  /** The principal left the conversation (or was removed). */
  stopPrincipal(principalId: string, conversationId: string): void {
    this.end(`${conversationId} ${principalId}`, true);
  }

  /** The conversation is gone: nobody is left to tell. */
  dropConversation(conversationId: string): void {
    for (const [key, typist] of this.typists) if (typist.conversationId === conversationId) this.end(key, false);
  }

  clear(): void {
    for (const key of [...this.typists.keys()]) this.end(key, false);
  }

  private expireLater(key: string): ReturnType<typeof setTimeout> {
    return setTimeout(() => this.end(key, true), this.ttlMs);
  }

  private end(key: string, announce: boolean): void {
    const typist = this.typists.get(key);
    if (!typist) return;
    clearTimeout(typist.timer);
    this.typists.delete(key);
    if (announce) this.announce("typing:stopped", typist.conversationId, typist.principalId, typist.userType, typist.connectionId);
  }

  private announce(
    event: "typing:started" | "typing:stopped",
    conversationId: string,
    principalId: string,
    userType: string,
    exceptConnectionId: string,
  ): void {
    this.publish({ conversationId, frame: typingFrame(event, conversationId, principalId, userType), exceptConnectionId });
  }
}
