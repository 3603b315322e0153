/**
 * Several instances on one PostgreSQL: what one instance's sockets must hear from the others goes through
 * LISTEN/NOTIFY on the `symbia_events` channel (./notify-channel.ts says why and how it is sent).
 *
 * - Frames: every frame this instance delivers to a conversation topic is also sent to the others, who
 *   deliver it to theirs. A frame too large for a notification goes as a reference (./relay-items.ts),
 *   which the receiver reads from the database. Sequenced frames pass each receiver's ordering stage,
 *   which fills gaps from the database.
 * - Principal frames (a principal was added to or removed from a conversation) go to the instances
 *   holding that principal's sockets; every instance hears them and delivers to its own.
 * - Presence: each instance announces its local presence per (conversation, principal) and keeps the
 *   others' (./peers.ts). An instance that stops sending (no heartbeat for EXPIRY_MS, e.g. killed) is
 *   forgotten, and its principals go offline for everyone's watchers.
 * - After the LISTEN connection comes back (PostgreSQL restarted), the hub catches up from the database:
 *   missed messages, ended memberships and deleted conversations (./catch-up.ts).
 * - An instance alone leaves sequenced frames out (./relay-policy.ts).
 */
import { randomUUID } from "node:crypto";
import type postgres from "postgres";
import type { Broker, BrokerHub, StreamSignal } from "../../realtime/broker";
import { typingFrame, type PresenceStatus, type PrincipalFrame, type TopicFrame } from "../../realtime/frames";
import type { PresenceEntry, PresentPrincipal } from "../../realtime/presence";
import { describeError, log } from "../../log";
import { CatchUpScheduler } from "./catch-up";
import { MAX_PAYLOAD_BYTES, NotifyChannel } from "./notify-channel";
import { PeerDirectory, type Peer } from "./peers";
import { RelayPolicy } from "./relay-policy";
import { frameItem, frameOfItem, principalItem, type RelayItem } from "./relay-items";

export const EVENTS_CHANNEL = "symbia_events";
/** How often an instance says it is alive, and how long silence lasts before it counts as gone. */
export const HEARTBEAT_MS = 2_000;
export const EXPIRY_MS = 7_000;
/** Frames above this go as references; the rest of the payload budget is for the envelope and batching. */
const INLINE_FRAME_BYTES = MAX_PAYLOAD_BYTES - 600;

export interface PostgresBrokerOptions {
  url: string;
  /** The pool's client, which manages the LISTEN connection. */
  listener: postgres.Sql;
}

export class PostgresBroker implements Broker {
  readonly name = "postgres";
  readonly instanceId = randomUUID();
  private readonly directory = new PeerDirectory();
  private readonly channel: NotifyChannel<RelayItem>;
  private readonly policy: RelayPolicy;
  private hub?: BrokerHub;
  private catchUps?: CatchUpScheduler;
  private heartbeat?: ReturnType<typeof setInterval>;
  /** Remote items are handled one after another, so references read from the database keep their place. */
  private inbound: Promise<void> = Promise.resolve();

  constructor(options: PostgresBrokerOptions) {
    this.channel = new NotifyChannel<RelayItem>({
      url: options.url,
      channel: EVENTS_CHANNEL,
      origin: this.instanceId,
      listener: options.listener,
      onItems: (items, origin) => {
        this.inbound = this.inbound
          .then(() => this.receive(items, origin))
          .catch((error) => log.warn("cross-instance item not handled", describeError(error)));
      },
      onListen: (reconnected) => {
        this.policy.listening();
        this.channel.send({ k: "sync" });
        if (reconnected) {
          log.info("cross-instance channel reconnected; catching up");
          this.catchUps?.request();
        }
      },
    });
    this.policy = new RelayPolicy(EXPIRY_MS, () => this.directory.size, () => this.channel.msSinceOwnEcho());
  }

  async start(hub: BrokerHub): Promise<void> {
    this.hub = hub;
    this.catchUps = new CatchUpScheduler(() => hub.catchUp());
    await this.channel.start();
    this.heartbeat = setInterval(() => {
      this.channel.send({ k: "hb" });
      for (const origin of this.directory.silentSince(Date.now() - EXPIRY_MS)) this.forgetPeer(origin);
    }, HEARTBEAT_MS);
    this.heartbeat.unref?.();
    log.info("cross-instance fan-out on", { channel: EVENTS_CHANNEL, instanceId: this.instanceId });
  }

  publish(frame: TopicFrame): void {
    // Alone, only frames with a sequence are left out (the bulk of the traffic), since a newcomer's
    // catch-up reads them back from the database; the rare rest goes out anyway.
    if (!this.policy.shouldRelay(frame.sequence !== undefined)) return;
    const item = frameItem(frame, INLINE_FRAME_BYTES);
    if (!item) {
      log.warn("frame too large to relay dropped", { conversationId: frame.conversationId, bytes: frame.frame.length });
      return;
    }
    this.channel.send(item);
  }

  publishToPrincipal(frame: PrincipalFrame): void {
    // Always sent, alone or not: rare, and nothing reads them back from the database later.
    const item = principalItem(frame, INLINE_FRAME_BYTES);
    if (item) this.channel.send(item);
    else log.warn("principal frame too large to relay dropped", { principal: frame.principalId, bytes: frame.frame.length });
  }

  announcePresence(entry: PresenceEntry): void {
    // Always sent, alone or not: presence changes are rare, and a peer that missed one would keep it.
    this.channel.send({ k: "p", c: entry.conversationId, u: entry.userId, t: entry.userType, st: entry.status });
  }

  remoteStatusIn(conversationId: string, principalId: string): PresenceStatus | undefined {
    return this.directory.statusIn(conversationId, principalId);
  }

  remotePresentIn(conversationId: string): PresentPrincipal[] {
    return this.directory.presentIn(conversationId);
  }

  peers(): string[] {
    return this.directory.ids();
  }

  livePeers(): string[] | undefined {
    return this.policy.peersKnown() ? this.directory.ids() : undefined;
  }

  signalStreams(signal: StreamSignal): void {
    // Always sent, alone or not: the asker waits for the holder's answer.
    this.channel.send({ k: "s", s: signal });
  }

  /** Items that could not be sent (database down, or too many waiting). */
  get droppedItems(): number {
    return this.channel.dropped;
  }

  async stop(): Promise<void> {
    this.catchUps?.stop();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.channel.send({ k: "bye" });
    await this.channel.stop();
    this.directory.clear();
  }

  /** Tells every instance this one's presence (a newcomer knows none of it). */
  private announceAll(): void {
    for (const entry of this.hub?.localPresence() ?? []) this.announcePresence(entry);
  }

  /**
   * The peer an item came from. Hearing an instance for the first time (or again after forgetting it),
   * this one greets: from now on it relays everything, and if it left sequenced frames out meanwhile the
   * greeting says so (every instance hears it, and each catches up). It also repeats its presence.
   */
  private peerOf(origin: string): { peer: Peer; isNew: boolean } {
    const heard = this.directory.heard(origin);
    if (heard.isNew) {
      this.channel.send(this.policy.greeting());
      this.announceAll();
    }
    return heard;
  }

  private forgetPeer(origin: string): void {
    const peer = this.directory.forget(origin);
    const hub = this.hub;
    if (!peer || !hub) return;
    hub.instanceGone(origin);
    for (const entry of peer.presence.values()) hub.remotePresenceChanged(entry.conversationId, entry.userId, entry.userType);
    // Its typing indicators would never expire otherwise: expiring them was its job.
    for (const typist of peer.typing.values()) {
      hub.deliverRemote({
        conversationId: typist.conversationId,
        frame: typingFrame("typing:stopped", typist.conversationId, typist.userId, typist.userType),
      });
    }
  }

  private async receive(items: RelayItem[], origin: string): Promise<void> {
    const hub = this.hub;
    if (!hub) return;
    const { peer, isNew } = this.peerOf(origin);
    for (const item of items) {
      switch (item.k) {
        case "f": {
          const received = frameOfItem(item);
          const frame = "frame" in received ? received.frame : await hub.reloadFrame(received.reference);
          if (frame) {
            if (frame.sequence === undefined) this.directory.trackTyping(peer, frame.frame);
            hub.deliverRemote(frame);
          }
          break;
        }
        case "u": {
          const frame =
            item.f !== undefined
              ? { principalId: item.u, frame: item.f, ...(item.o !== undefined && { orgId: item.o }) }
              : item.c && item.ro
                ? await hub.reloadPrincipalFrame(item.u, { conversationId: item.c, role: item.ro })
                : undefined;
          if (frame) hub.deliverRemoteToPrincipal(frame);
          break;
        }
        case "p":
          this.directory.setPresence(peer, item.c, item.u, item.t, item.st);
          hub.remotePresenceChanged(item.c, item.u, item.t);
          break;
        case "sync":
        case "hi":
          // A new (or reconnected) instance, or one that had forgotten this one, lacks our presence
          // (unless greeting it just told it).
          if (!isNew) this.announceAll();
          if (item.k === "hi" && item.w) this.catchUps?.request();
          break;
        case "s":
          hub.streamSignal(item.s);
          break;
        case "bye":
          this.forgetPeer(origin);
          break;
        case "hb":
          break;
      }
    }
  }
}
