/**
 * The realtime hub: open connections, their conversation topics, and the one path by which frames reach
 * sockets.
 *
 * Every committed domain event (REST or WebSocket alike) becomes one pre-serialised frame
 * (`frameOfDomainEvent`) handed to `deliver`, which publishes it once on the conversation's Bun topic and
 * hands it to the broker for the other instances; frames from other instances come back through
 * `deliverRemote`. Nothing else sends to topics. Joining with a replay is in ./join.ts.
 *
 * The hub runs no SQL and knows no broker implementation: it reads through a RealtimeStore (./store.ts)
 * and relays through a Broker (./broker.ts).
 */
import type { Server } from "bun";
import { withinActingReach } from "../auth/act-as";
import { extractCredentials } from "../auth/identity";
import type { Principal } from "../auth/principal";
import type { Config } from "../config";
import { addedSinceOf } from "../http/socket-query";
import type { Scope } from "../core/scope";
import type { DomainEvent } from "../domain/domain-events";
import { describeError, log } from "../log";
import { wsClosesOf, wsConnectionsOpen, wsConnectionsOpened, wsFramesPublished, wsSlowConsumerCloses } from "../metrics/registry";
import { LocalBroker, type Broker, type BrokerHub, type FrameReference, type StreamSignal } from "./broker";
import { CLOSE, Connection, type RealtimeSocket } from "./connection";
import {
  conversationAddedFrame,
  frameOfDomainEvent,
  frameOfStoredMessage,
  frameWithJson,
  principalFramesOfDomainEvent,
  serverFrame,
  type PrincipalFrame,
  type TopicFrame,
} from "./frames";
import { joinConversation, type JoinResult, type JoinSite } from "./join";
import { Presence, type PresenceEntry } from "./presence";
import { ReleaseLog, SequenceOrder } from "../core/sequence-order";
import { frameBudgetsFor } from "./rate-limit";
import { effectiveHeartbeatMs } from "./socket-options";
import type { LiveStreams, RealtimeStore } from "./store";
import { StreamRelay } from "./stream-relay";
import { TypingIndicators } from "./typing";

export type { JoinResult } from "./join";

/** How often connections are checked for a full send buffer and an expired credential. */
const SWEEP_INTERVAL_MS = 200;
/** At most this many `conversation:added` frames for a connection opened with `addedSince`. */
export const ADDED_SINCE_LIMIT = 100;
/** Ordering state of a conversation is kept this long after its last frame. */
const ORDER_IDLE_MS = 60_000;
/** How long a frame waits for a missing predecessor before the gap is read from the database. */
const ORDER_HOLD_MS = 50;
export const topicOf = (conversationId: string) => `conversation:${conversationId}`;

/** What the upgrade request left for the socket: the gate's principal and scope. */
export interface UpgradeContext {
  request: Request;
  principal?: Principal;
  scope: Scope;
  requestId: string;
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

export class RealtimeHub implements BrokerHub {
  private server?: Server<unknown>;
  private readonly bySocket = new WeakMap<object, Connection>();
  private readonly byId = new Map<string, Connection>();
  private readonly byPrincipal = new Map<string, Set<Connection>>();
  private readonly subscribers = new Map<string, Set<Connection>>();
  private readonly joiners = new Map<string, Set<Connection>>();
  private readonly order: SequenceOrder<TopicFrame>;
  private readonly releases = new ReleaseLog();
  /** Bytes published per topic since its subscribers' buffers were last checked. */
  private readonly publishedBytes = new Map<string, number>();
  readonly presence: Presence;
  readonly typing: TypingIndicators;
  private readonly inflight = new Set<Promise<void>>();
  private readonly teardowns: (() => void)[] = [];
  private sweepTimer?: ReturnType<typeof setInterval>;
  private sweeps = 0;
  private closing = false;

  private broker: Broker = new LocalBroker();
  private readonly joinSite: JoinSite;
  private readonly streamRelay: StreamRelay;

  constructor(
    readonly config: Config,
    readonly store: RealtimeStore,
    /** Content of the streams this instance holds or mirrors. */
    private readonly streams: LiveStreams,
  ) {
    this.streamRelay = new StreamRelay(() => this.broker, streams);
    streams.usePeers(this.streamRelay);
    this.order = new SequenceOrder<TopicFrame>(
      (frame) => this.fanOut(frame),
      ORDER_HOLD_MS,
      (conversationId, after, upTo) => this.framesFromDatabase(conversationId, after, upTo),
      (conversationId, sequence) => this.releases.has(conversationId, sequence),
    );
    this.presence = new Presence({
      connectionsOf: (principalId) => this.byPrincipal.get(principalId) ?? [],
      subscribersOf: (conversationId) => this.subscribers.get(conversationId) ?? [],
      // Each instance computes presence for its own subscribers; presence frames are not relayed.
      publish: (frame) => this.order.push(frame),
    });
    this.typing = new TypingIndicators(config.typingTtlMs, (frame) => this.deliver(frame));
    this.joinSite = {
      store,
      streams,
      replayLimit: config.replayLimit,
      // A replay larger than half the slow-consumer limit stops early (truncated): the client asks for the
      // rest once it has read this part, instead of the server queueing it all at once.
      replayBudgetBytes: config.wsBackpressureBytes / 2,
      track: (conversationId, committed) => this.order.track(conversationId, committed),
      released: (conversationId, sequence) => this.releases.has(conversationId, sequence),
      startJoining: (connection, conversationId, pending) => {
        connection.joining.set(conversationId, pending);
        addTo(this.joiners, conversationId, connection);
      },
      endJoining: (connection, conversationId, pending) => {
        if (connection.joining.get(conversationId) !== pending) return;
        connection.joining.delete(conversationId);
        removeFrom(this.joiners, conversationId, connection);
      },
      unsubscribe: (connection, conversationId) => this.unsubscribe(connection, conversationId),
      subscribe: (connection, conversationId, participant) => {
        connection.socket.subscribe(topicOf(conversationId));
        connection.joined.set(conversationId, { observer: !participant });
        addTo(this.subscribers, conversationId, connection);
        if (participant) this.presence.joined(connection, conversationId);
        return this.presence.snapshot(conversationId);
      },
    };
  }

  /** The broker that carries frames and presence to other instances; started here. */
  async useBroker(broker: Broker): Promise<void> {
    this.broker = broker;
    this.presence.remote = {
      statusIn: (conversationId, principalId) => broker.remoteStatusIn(conversationId, principalId),
      presentIn: (conversationId) => broker.remotePresentIn(conversationId),
      announce: (entry) => broker.announcePresence(entry),
    };
    await broker.start(this);
  }

  /** Detaches the broker before it stops: from then on this instance relays nothing. */
  dropBroker(): void {
    this.broker = new LocalBroker();
    this.presence.remote = undefined;
  }

  /** Publishes a committed domain event to its conversation's topic: the realtime delivery listener. */
  publishDomainEvent(event: DomainEvent): void {
    const frame = frameOfDomainEvent(event);
    if (frame) this.deliver(frame);
  }

  /** Tells principals of a committed domain event that concerns them (added, removed): the notification listener. */
  notifyPrincipals(event: DomainEvent): void {
    for (const frame of principalFramesOfDomainEvent(event)) this.deliverToPrincipal(frame);
  }

  /**
   * A frame for every connection of a principal, joined to anything or not, on every instance. Not
   * ordered with topic frames: it is news about membership, and a client acts on it by joining.
   */
  deliverToPrincipal(frame: PrincipalFrame): void {
    this.deliverRemoteToPrincipal(frame);
    this.broker.publishToPrincipal(frame);
  }

  streamSignal(signal: StreamSignal): void {
    this.streamRelay.received(signal);
  }

  deliverRemoteToPrincipal(frame: PrincipalFrame): void {
    for (const connection of this.byPrincipal.get(frame.principalId) ?? []) {
      // A service acting for the principal is not told of conversations it may not reach.
      if (withinActingReach(connection.principal, frame.orgId ?? null)) connection.send(frame.frame);
    }
  }

  async reloadPrincipalFrame(principalId: string, reload: NonNullable<PrincipalFrame["reload"]>): Promise<PrincipalFrame | undefined> {
    const conversation = await this.store.conversation(reload.conversationId);
    return conversation ? conversationAddedFrame(principalId, conversation, reload.role) : undefined;
  }

  /** Runs at shutdown (e.g. listeners registered on the hub's behalf). */
  onShutdown(teardown: () => void): void {
    this.teardowns.push(teardown);
  }

  /** The Bun server whose topics the hub publishes on; given once it listens. */
  attach(server: Server<unknown>): void {
    this.server = server;
    this.sweepTimer ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref?.();
  }

  get connectionCount(): number {
    return this.byId.size;
  }

  /** Bytes waiting in all sockets' send buffers; bounded by the slow-consumer limit per socket. */
  bufferedBytes(): number {
    let total = 0;
    for (const connection of this.byId.values()) total += connection.socket.getBufferedAmount();
    return total;
  }

  connectionOf(socket: object): Connection | undefined {
    return this.bySocket.get(socket);
  }

  /** A connection by the id its session:ready announced. */
  connection(connectionId: string): Connection | undefined {
    return this.byId.get(connectionId);
  }

  connections(): Iterable<Connection> {
    return this.byId.values();
  }

  connectionsOf(principalId: string): Iterable<Connection> {
    return this.byPrincipal.get(principalId) ?? [];
  }

  open(socket: RealtimeSocket, context: UpgradeContext): Connection | undefined {
    if (this.closing) {
      socket.close(CLOSE.goingAway, "server shutting down");
      return undefined;
    }
    if (!context.principal) {
      // The gate answers 401 before any upgrade; this is only a safety net.
      socket.close(CLOSE.unauthorized, "authentication required");
      return undefined;
    }
    const { config } = this;
    const query = new URL(context.request.url).searchParams;
    const budgets = frameBudgetsFor(config, context.principal);
    const connection = new Connection(
      socket,
      context.principal,
      extractCredentials(context.request.headers, query),
      context.scope,
      context.requestId,
      budgets.frames,
      budgets.appends,
      config.wsSendWindow,
    );
    this.bySocket.set(socket, connection);
    this.byId.set(connection.id, connection);
    addTo(this.byPrincipal, connection.principal.id, connection);
    wsConnectionsOpen.inc();
    wsConnectionsOpened.inc();
    connection.send(
      serverFrame("session:ready", {
        connectionId: connection.id,
        user: { id: connection.principal.id, type: connection.principal.type },
        ...(connection.principal.actedBy && { actedBy: connection.principal.actedBy }),
        heartbeatMs: effectiveHeartbeatMs(config),
        serverTime: new Date().toISOString(),
      }),
    );
    log.debug("socket opened", { requestId: connection.requestId, connectionId: connection.id, principal: connection.principal.id });
    const addedSince = addedSinceOf(query);
    if (addedSince) void this.tellJoinedSince(connection, addedSince);
    return connection;
  }

  /**
   * A client reconnecting after a while asks what it missed: each conversation its principal joined
   * since then, as the `conversation:added` it would have heard (one added meanwhile may come twice).
   */
  private async tellJoinedSince(connection: Connection, since: Date): Promise<void> {
    try {
      const joined = await this.store.conversationsJoinedSince(connection.principal.id, since, ADDED_SINCE_LIMIT);
      for (const { conversation, role } of joined) {
        if (connection.closed) return;
        if (withinActingReach(connection.principal, conversation.org_id ?? null)) connection.send(serverFrame("conversation:added", { conversation, role }));
      }
    } catch (error) {
      log.warn("conversations joined since a reconnect not read", { connectionId: connection.id, ...describeError(error) });
    }
  }

  /** Bun reports the socket closed (by either side): forget it everywhere. */
  closed(socket: object, code: number): void {
    const connection = this.bySocket.get(socket);
    if (!connection) return;
    this.bySocket.delete(socket);
    connection.closed = true;
    wsConnectionsOpen.dec();
    wsClosesOf(code).inc();
    this.byId.delete(connection.id);
    removeFrom(this.byPrincipal, connection.principal.id, connection);
    for (const [conversationId, pending] of connection.joining) {
      removeFrom(this.joiners, conversationId, connection);
      pending.settled?.();
    }
    connection.joining.clear();
    this.typing.stopConnection(connection);
    for (const [conversationId, joined] of [...connection.joined]) {
      this.unsubscribe(connection, conversationId);
      this.presence.left(connection, conversationId, joined.observer);
    }
    this.presence.closed(connection.principal.id);
    log.debug("socket closed", { connectionId: connection.id, principal: connection.principal.id, code });
  }

  /**
   * Handles one client frame in the connection's frame order (`Connection.schedule`: sends may overlap,
   * up to the window); tracked so shutdown can wait for it.
   */
  run(connection: Connection, task: () => Promise<void>, send = false): void {
    const done = connection.schedule(task, send);
    this.inflight.add(done);
    done.finally(() => this.inflight.delete(done));
  }

  get shuttingDown(): boolean {
    return this.closing;
  }

  /**
   * The single delivery point: a frame for a conversation's topic, with its sequence when it carries a
   * message. Frames pass the ordering stage, then reach joining buffers and the Bun topic.
   */
  deliver(frame: TopicFrame): void {
    this.order.push(frame);
    this.broker.publish(frame);
  }

  /** A frame produced by another instance: delivered here, not sent on. */
  deliverRemote(frame: TopicFrame): void {
    this.order.push(frame);
  }

  /** Messages after `after` up to `upTo`, as the frames that announced them live. */
  private async framesFromDatabase(conversationId: string, after: number, upTo: number): Promise<TopicFrame[]> {
    if (upTo <= after) return [];
    const messages = await this.store.messagesSince(conversationId, after, upTo - after);
    return messages.map((message) => frameOfStoredMessage(message, "live"));
  }

  /** A relayed reference to a frame too large for a notification, read back from the database. */
  async reloadFrame(reference: FrameReference): Promise<TopicFrame | undefined> {
    const { conversationId } = reference;
    if ("messageId" in reference) {
      const message = await this.store.message(reference.messageId);
      return message ? { conversationId, frame: frameWithJson("message:updated", JSON.stringify(message)) } : undefined;
    }
    if ("conversation" in reference) {
      const conversation = await this.store.conversation(conversationId);
      return conversation ? { conversationId, frame: serverFrame("conversation:updated", conversation) } : undefined;
    }
    const [frame] = await this.framesFromDatabase(conversationId, reference.sequence - 1, reference.sequence);
    return frame && { ...frame, revoke: reference.revoke };
  }

  instanceGone(instanceId: string): void {
    this.streams.holderGone(instanceId);
  }

  remotePresenceChanged(conversationId: string, userId: string, userType: string): void {
    this.presence.remoteChanged(conversationId, userId, userType);
  }

  /** This instance's presence, for another instance that (re)started and asks for it. */
  *localPresence(): Generator<PresenceEntry> {
    for (const [principalId, connections] of this.byPrincipal) {
      const seen = new Set<string>();
      for (const connection of connections) {
        for (const [conversationId, joined] of connection.joined) {
          if (joined.observer || seen.has(conversationId)) continue;
          seen.add(conversationId);
          yield { conversationId, userId: principalId, userType: connection.principal.type, status: this.presence.statusOf(principalId) };
        }
      }
    }
  }

  /**
   * After a time without notifications from other instances (the LISTEN connection was down, or another
   * instance left messages out while it thought itself alone), bring this instance's subscribers, and
   * its joins under way, up to date from the database: messages they missed, memberships that ended,
   * conversations that were deleted.
   */
  async catchUp(): Promise<void> {
    // Deltas may have been missed with the rest: mirrors start again from their holders.
    this.streams.forgetMirrors();
    for (const conversationId of new Set([...this.subscribers.keys(), ...this.joiners.keys()])) {
      const state = await this.store.conversationState(conversationId);
      if (!state) {
        this.deliverRemote({ conversationId, frame: serverFrame("conversation:deleted", { id: conversationId }), revoke: { everyone: true } });
        continue;
      }
      // Memberships that ended meanwhile end here too.
      for (const connection of [...(this.subscribers.get(conversationId) ?? [])]) {
        const joined = connection.joined.get(conversationId);
        if (joined && !joined.observer && !state.members.has(connection.principal.id)) {
          this.revoke(conversationId, { principalId: connection.principal.id });
        }
      }
      const released = this.order.releasedUpTo(conversationId);
      if (released !== undefined && state.lastSequence > released) {
        for (const frame of await this.framesFromDatabase(conversationId, released, state.lastSequence)) this.deliverRemote(frame);
      }
    }
  }

  private fanOut(frame: TopicFrame): void {
    const { conversationId, sequence } = frame;
    if (frame.streamSnapshot) return this.streamRelay.snapshotPart(frame.streamSnapshot, conversationId);
    // A mirrored stream follows its relayed deltas here, where joins meet them (src/realtime/join.ts).
    if (frame.delta) this.streams.deltaDelivered(frame.delta.messageId, frame.delta.offset, frame.frame);
    if (sequence !== undefined) this.releases.record(conversationId, sequence);
    const joiners = this.joiners.get(conversationId);
    if (joiners) {
      for (const connection of joiners) {
        const pending = connection.joining.get(conversationId);
        if (!pending) continue;
        if (connection.id !== frame.exceptConnectionId) pending.buffer.push(frame);
        if (sequence !== undefined && pending.awaiting?.delete(sequence) && pending.awaiting.size === 0) pending.settled?.();
      }
    }
    if (this.subscribers.has(conversationId)) {
      const except = frame.exceptConnectionId ? this.byId.get(frame.exceptConnectionId) : undefined;
      // A socket's own publish skips that socket, whether or not it is subscribed.
      if (except && !except.closed) except.socket.publish(topicOf(conversationId), frame.frame, false);
      else this.server?.publish(topicOf(conversationId), frame.frame, false);
      wsFramesPublished.inc();
      this.checkAfterPublish(conversationId, frame.frame.length);
    }
    if (frame.revoke) this.revoke(conversationId, frame.revoke);
  }

  /** Membership ended (removal, deletion): the frame announcing it is out; now stop the topic for them. */
  private revoke(conversationId: string, revoke: NonNullable<TopicFrame["revoke"]>): void {
    const everyone = "everyone" in revoke;
    const affected = (connection: Connection) => everyone || connection.principal.id === revoke.principalId;
    for (const connection of this.joiners.get(conversationId) ?? []) {
      const pending = connection.joining.get(conversationId);
      if (pending && affected(connection)) {
        pending.revoked = true;
        pending.settled?.();
      }
    }
    for (const connection of [...(this.subscribers.get(conversationId) ?? [])]) {
      if (!affected(connection)) continue;
      const joined = connection.joined.get(conversationId);
      this.unsubscribe(connection, conversationId);
      if (!everyone && joined && !joined.observer) this.presence.left(connection, conversationId, false);
    }
    if (everyone) {
      this.presence.forgetConversation(conversationId);
      this.typing.dropConversation(conversationId);
      this.order.forget(conversationId);
      this.releases.forget(conversationId);
    } else {
      this.typing.stopPrincipal(revoke.principalId, conversationId);
    }
  }

  /** Stops a socket's topic without announcing anything (membership ended, or the join starts over). */
  unsubscribe(connection: Connection, conversationId: string): void {
    if (!connection.joined.delete(conversationId)) return;
    if (!connection.closed) connection.socket.unsubscribe(topicOf(conversationId));
    removeFrom(this.subscribers, conversationId, connection);
  }

  /** Subscribes a connection to a conversation, replaying what it missed after `since` (./join.ts). */
  join(connection: Connection, conversationId: string, since?: number): Promise<JoinResult> {
    return joinConversation(this.joinSite, connection, conversationId, since);
  }

  /** Stops watching a conversation (participation itself is unchanged; POST /leave ends that). */
  leave(connection: Connection, conversationId: string): void {
    const joined = connection.joined.get(conversationId);
    if (!joined) return;
    this.unsubscribe(connection, conversationId);
    if (!joined.observer) {
      this.typing.stop(connection, conversationId);
      this.presence.left(connection, conversationId, false);
    }
  }

  /**
   * Publishing does not report per socket, so a fast producer could fill a slow socket's buffer well past
   * the limit between two sweeps. Once a topic has carried half the limit in bytes, its subscribers are
   * checked at once: a cost of one check per subscriber per that many bytes.
   */
  private checkAfterPublish(conversationId: string, bytes: number): void {
    const total = (this.publishedBytes.get(conversationId) ?? 0) + bytes;
    if (total < this.config.wsBackpressureBytes / 2) {
      this.publishedBytes.set(conversationId, total);
      return;
    }
    this.publishedBytes.delete(conversationId);
    for (const connection of [...(this.subscribers.get(conversationId) ?? [])]) this.closeIfSlow(connection);
  }

  private closeIfSlow(connection: Connection): boolean {
    if (connection.closed || connection.socket.getBufferedAmount() <= this.config.wsBackpressureBytes) return false;
    log.warn("closing slow consumer", { connectionId: connection.id, principal: connection.principal.id });
    wsSlowConsumerCloses.inc();
    connection.close(CLOSE.slowConsumer, "slow consumer");
    return true;
  }

  /** Slow consumers and expired credentials, checked periodically (publish does not report per socket). */
  private sweep(): void {
    const now = Date.now();
    if (++this.sweeps % 5 === 0) {
      this.order.prune(now, ORDER_IDLE_MS, (conversationId) => this.subscribers.has(conversationId) || this.joiners.has(conversationId));
      this.releases.prune(now);
      this.publishedBytes.clear();
    }
    for (const connection of [...this.byId.values()]) {
      if (connection.closed || this.closeIfSlow(connection)) continue;
      const expiresAt = connection.principal.credential.expiresAt;
      if (expiresAt !== undefined && expiresAt <= now) connection.close(CLOSE.unauthorized, "credential expired");
    }
  }

  /**
   * Graceful stop: refuse new frames, let frames being handled finish (their acks go out), then close
   * every socket with 1001 so clients reconnect elsewhere and resume.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (this.inflight.size > 0) {
      await Promise.race([Promise.allSettled([...this.inflight]), Bun.sleep(timeoutMs)]);
    }
    for (const connection of [...this.byId.values()]) connection.close(CLOSE.goingAway, "server shutting down");
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.typing.clear();
    for (const teardown of this.teardowns.splice(0)) teardown();
  }
}
