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
 * - An instance that hears no other instance leaves out the frames that carry a sequence (messages and
 *   control events, the bulk of the traffic): a single instance on PostgreSQL does not pay for NOTIFY.
 *   Everything else (edits, deletions, membership and conversation changes, typing, presence) is rare
 *   and always goes out. It counts as alone only while it knows no peer, has been listening for
 *   EXPIRY_MS (after its start or a LISTEN reconnect), and hears its own heartbeats (so its LISTEN
 *   connection works). On hearing an instance for the first time it greets with `hi`, flagged when it
 *   left frames out since its last greeting; every instance that hears the flag catches up from the
 *   database as after a reconnect, which reads those messages back.
 *
 * On the embedded database there is one process only, and none of this runs.
 */
import { randomUUID } from "node:crypto";
import { typingFrame, type TopicFrame } from "../realtime/frames";
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
   * left sequenced frames out since its last greeting (it was alone): whoever hears it catches up.
   */
  | { k: "hi"; w?: 1 }
  | { k: "bye" };

interface Peer {
  lastSeen: number;
  /** `${conversationId} ${userId}` → presence there. */
  presence: Map<string, { conversationId: string; userId: string; userType: string; status: PresenceStatus }>;
  /**
   * `${conversationId} ${userId}` → who is typing there on that instance, by its relayed typing frames.
   * The instance itself ends them (stop or expiry); if it vanishes, the others do.
   */
  typing: Map<string, { conversationId: string; userId: string; userType: string }>;
}

const TYPING_STARTED = '{"event":"typing:started"';
const TYPING_STOPPED = '{"event":"typing:stopped"';

/** Follows a peer's typing indicators from the frames it relays. */
function trackTyping(peer: Peer, frame: string): void {
  const started = frame.startsWith(TYPING_STARTED);
  if (!started && !frame.startsWith(TYPING_STOPPED)) return;
  const { data } = JSON.parse(frame) as { data: { conversationId: string; userId: string; userType: string } };
  const key = `${data.conversationId} ${data.userId}`;
  if (started) peer.typing.set(key, { conversationId: data.conversationId, userId: data.userId, userType: data.userType });
  else peer.typing.delete(key);
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
  /**
   * Whether an instance that may be alive could lack frames of this one: no peer is known, and this
   * instance can trust that (it has been listening for a while, and it hears its own heartbeats, so its
   * LISTEN connection works and would have brought others' heartbeats).
   */
  const alone = () => peers.size === 0 && Date.now() >= relayUntil && channel.msSinceOwnEcho() < EXPIRY_MS;
  /** A sequenced frame was not relayed since the last greeting: whoever is greeted next must catch up. */
  let skipped = false;
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
      // Always sent, alone or not: presence changes are rare, and a peer that missed one would keep it.
      channel.send({ k: "p", c: entry.conversationId, u: entry.userId, t: entry.userType, st: entry.status });
    },
  };

  /** Tells every instance this one's presence (a newcomer knows none of it). */
  const announceAll = () => {
    for (const entry of hub.localPresence()) remote.announce(entry);
  };

  /**
   * The peer an item came from. Hearing an instance for the first time (or again after forgetting it),
   * this one greets: from now on it relays everything, and if it left sequenced frames out meanwhile the
   * greeting says so (every instance hears it, and each catches up). It also repeats its presence.
   */
  function peerOf(origin: string): { peer: Peer; isNew: boolean } {
    let peer = peers.get(origin);
    const isNew = !peer;
    if (!peer) {
      peer = { lastSeen: Date.now(), presence: new Map(), typing: new Map() };
      peers.set(origin, peer);
      channel.send(skipped ? { k: "hi", w: 1 } : { k: "hi" });
      skipped = false;
      announceAll();
    }
    peer.lastSeen = Date.now();
    return { peer, isNew };
  }

  function forgetPeer(origin: string): void {
    const peer = peers.get(origin);
    if (!peer) return;
    peers.delete(origin);
    for (const entry of peer.presence.values()) hub.presence.remoteChanged(entry.conversationId, entry.userId, entry.userType);
    // Its typing indicators would never expire otherwise: expiring them was its job.
    for (const typist of peer.typing.values()) {
      hub.deliverRemote({
        conversationId: typist.conversationId,
        frame: typingFrame("typing:stopped", typist.conversationId, typist.userId, typist.userType),
      });
    }
  }

  async function receive(items: Item[], origin: string): Promise<void> {
    const { peer, isNew } = peerOf(origin);
    for (const item of items) {
      switch (item.k) {
        case "f": {
          const frame = item.f !== undefined ? { conversationId: item.c, frame: item.f, sequence: item.s, revoke: item.r } : await hub.reloadFrame(item);
          if (frame) {
            if (frame.sequence === undefined) trackTyping(peer, frame.frame);
            hub.deliverRemote(frame);
          }
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
        case "hi":
          // A new (or reconnected) instance, or one that had forgotten this one, lacks our presence
          // (unless greeting it just told it).
          if (!isNew) announceAll();
          if (item.k === "hi" && item.w) catchUp();
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
    // Alone, only frames with a sequence are left out (messages: the bulk of the traffic), since a
    // newcomer's catch-up reads them back from the database; the rare rest goes out anyway.
    if (frame.sequence !== undefined && alone()) {
      skipped = true;
      return;
    }
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
