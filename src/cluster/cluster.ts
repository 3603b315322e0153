/**
 * Several instances on one PostgreSQL: what one instance's sockets must hear from the others goes through
 * LISTEN/NOTIFY on the `symbia_events` channel (see NotifyChannel for why and how it is sent).
 *
 * - Frames: every frame this instance delivers to a conversation topic is also sent to the others, who
 *   deliver it to theirs. A frame too large for a notification goes as a reference (conversation and
 *   sequence, or the message or conversation to reload), which the receiver reads from the database.
 *   Sequenced frames pass each receiver's ordering stage, which fills gaps from the database.
 * - Presence: each instance announces its local presence per (conversation, principal) and keeps the
 *   others'. An instance that stops sending (no heartbeat for EXPIRY_MS, e.g. killed) is forgotten,
 *   and its principals go offline for everyone's watchers.
 * - After the LISTEN connection comes back (PostgreSQL restarted), the hub catches up from the database:
 *   missed messages, ended memberships and deleted conversations.
 * - An instance that hears no other instance relays no frames and no presence: a single instance on
 *   PostgreSQL does not pay for NOTIFY. It relays for EXPIRY_MS after it starts (or its LISTEN connection
 *   comes back), and again from the moment it hears another instance (every instance heartbeats, and a new
 *   one says `sync` at once). What it did not relay meanwhile, the newcomer reads from the database: the
 *   instance that was alone answers `hi` with `w`, and the newcomer catches up as after a reconnect.
 *
 * On the embedded database there is one process only, and none of this runs.
 */
import { randomUUID } from "node:crypto";
import type { TopicFrame } from "../realtime/frames";
import type { PresentPrincipal, PresenceEntry, RemotePresence } from "../realtime/presence";
import type { PresenceStatus } from "../realtime/frames";
import type { RealtimeHub } from "../realtime/hub";
import type { Services } from "../services";
import { describeError, log } from "../log";
import { MAX_PAYLOAD_BYTES, NotifyChannel } from "./notify-channel";

export const EVENTS_CHANNEL = "symbia_events";
/** How often an instance says it is alive, and how long silence lasts before it counts as gone. */
export const HEARTBEAT_MS = 2_000;
export const EXPIRY_MS = 7_000;
/** Frames above this go as references; the rest of the payload budget is for the envelope and batching. */
const INLINE_FRAME_BYTES = MAX_PAYLOAD_BYTES - 600;

/** What instances say to each other. Short keys: every byte counts against the 8,000-byte payload. */
type Item =
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
    }
  | { k: "p"; c: string; u: string; t: string; st?: PresenceStatus }
  | { k: "hb" }
  | { k: "sync" }
  /**
   * Sent on hearing from an instance for the first time (or again after forgetting it). `w`: the sender
   * was alone and relayed nothing just before, so the new peer may have missed frames: it catches up.
   */
  | { k: "hi"; w?: 1 }
  | { k: "bye" };

interface Peer {
  lastSeen: number;
  /** `${conversationId} ${userId}` → presence there. */
  presence: Map<string, { conversationId: string; userId: string; userType: string; status: PresenceStatus }>;
}

export interface Cluster {
  readonly instanceId: string;
  peers(): string[];
  stop(): Promise<void>;
}

export async function startCluster(services: Services, hub: RealtimeHub): Promise<Cluster | undefined> {
  const { database, config } = services;
  // CLUSTER_FANOUT=off (config.clusterFanout): a single instance that relays nothing.
  if (database.kind !== "postgres" || !database.pg || !config.databaseUrl || !config.clusterFanout) return undefined;

  const instanceId = randomUUID();
  const peers = new Map<string, Peer>();
  /** Until then frames are relayed even with no peer known: others may exist that have not been heard yet. */
  let relayUntil = Date.now() + EXPIRY_MS;
  const relaying = () => peers.size > 0 || Date.now() < relayUntil;
  /** One catch-up at a time; a request meanwhile runs one more afterwards, and so does a failure (later). */
  let catchingUp: Promise<void> | undefined;
  let catchUpAgain = false;
  let stopped = false;
  const catchUp = () => {
    if (stopped) return;
    if (catchingUp) {
      catchUpAgain = true;
      return;
    }
    catchingUp = hub
      .catchUp()
      .catch((error) => {
        log.warn("catching up from the database failed; trying again in a second", describeError(error));
        setTimeout(catchUp, 1000).unref?.();
      })
      .finally(() => {
        catchingUp = undefined;
        if (catchUpAgain) {
          catchUpAgain = false;
          catchUp();
        }
      });
  };
  /** Remote items are handled one after another, so references read from the database keep their place. */
  let inbound: Promise<void> = Promise.resolve();

  const channel = new NotifyChannel<Item>({
    url: config.databaseUrl,
    channel: EVENTS_CHANNEL,
    origin: instanceId,
    listener: database.pg,
    onItems: (items, origin) => {
      inbound = inbound.then(() => receive(items, origin)).catch((error) =>
        log.warn("cross-instance item not handled", describeError(error)),
      );
    },
    onListen: (reconnected) => {
      relayUntil = Date.now() + EXPIRY_MS;
      channel.send({ k: "sync" });
      if (reconnected) {
        log.info("cross-instance channel reconnected; catching up");
        catchUp();
      }
    },
  });

  const remote: RemotePresence = {
    statusIn(conversationId, principalId) {
      for (const peer of peers.values()) {
        const entry = peer.presence.get(`${conversationId} ${principalId}`);
        if (entry) return entry.status;
      }
      return undefined;
    },
    presentIn(conversationId) {
      const present: PresentPrincipal[] = [];
      for (const peer of peers.values()) {
        for (const entry of peer.presence.values()) {
          if (entry.conversationId === conversationId) present.push({ userId: entry.userId, userType: entry.userType, status: entry.status });
        }
      }
      return present;
    },
    announce(entry: PresenceEntry) {
      if (relaying()) channel.send({ k: "p", c: entry.conversationId, u: entry.userId, t: entry.userType, st: entry.status });
    },
  };

  /** Tells every instance this one's presence (a newcomer knows none of it). */
  const announceAll = () => {
    for (const entry of hub.localPresence()) remote.announce(entry);
  };

  function peerOf(origin: string): Peer {
    let peer = peers.get(origin);
    if (!peer) {
      const wasAlone = !relaying();
      peer = { lastSeen: Date.now(), presence: new Map() };
      peers.set(origin, peer);
      // From here on this instance relays. If it was alone, the newcomer may lack what it did meanwhile.
      channel.send(wasAlone ? { k: "hi", w: 1 } : { k: "hi" });
      announceAll();
    }
    peer.lastSeen = Date.now();
    return peer;
  }

  function forgetPeer(origin: string): void {
    const peer = peers.get(origin);
    if (!peer) return;
    peers.delete(origin);
    for (const entry of peer.presence.values()) hub.presence.remoteChanged(entry.conversationId, entry.userId, entry.userType);
  }

  async function receive(items: Item[], origin: string): Promise<void> {
    const peer = peerOf(origin);
    for (const item of items) {
      switch (item.k) {
        case "f": {
          const frame = item.f !== undefined ? { conversationId: item.c, frame: item.f, sequence: item.s, revoke: item.r } : await hub.reloadFrame(item);
          if (frame) hub.deliverRemote(frame);
          break;
        }
        case "p": {
          const k = `${item.c} ${item.u}`;
          if (item.st) peer.presence.set(k, { conversationId: item.c, userId: item.u, userType: item.t, status: item.st });
          else peer.presence.delete(k);
          hub.presence.remoteChanged(item.c, item.u, item.t);
          break;
        }
        case "sync":
          // A new (or reconnected) instance knows nothing of ours: tell it our presence again.
          announceAll();
          break;
        case "hi":
          if (item.w) catchUp();
          break;
        case "bye":
          forgetPeer(origin);
          break;
        case "hb":
          break;
      }
    }
  }

  const relayFrame = (frame: TopicFrame) => {
    if (!relaying()) return;
    const item: Item = { k: "f", c: frame.conversationId, s: frame.sequence, r: frame.revoke };
    if (Buffer.byteLength(frame.frame) <= INLINE_FRAME_BYTES) item.f = frame.frame;
    else if (frame.reload && "messageId" in frame.reload) item.m = frame.reload.messageId;
    else if (frame.reload) item.cv = 1;
    else if (frame.sequence === undefined) {
      log.warn("frame too large to relay dropped", { conversationId: frame.conversationId, bytes: frame.frame.length });
      return;
    }
    channel.send(item);
  };

  await channel.start();
  hub.presence.remote = remote;
  hub.outbound = relayFrame;
  const heartbeat = setInterval(() => {
    channel.send({ k: "hb" });
    const cutoff = Date.now() - EXPIRY_MS;
    for (const [origin, peer] of peers) if (peer.lastSeen < cutoff) forgetPeer(origin);
  }, HEARTBEAT_MS);
  heartbeat.unref?.();
  log.info("cross-instance fan-out on", { channel: EVENTS_CHANNEL, instanceId });

  return {
    instanceId,
    peers: () => [...peers.keys()],
    async stop() {
      stopped = true;
      clearInterval(heartbeat);
      hub.outbound = undefined;
      hub.presence.remote = undefined;
      channel.send({ k: "bye" });
      await channel.stop();
    },
  };
}
