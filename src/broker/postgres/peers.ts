/**
 * The other instances this one hears: when each was last heard, the presence it announced, and who is
 * typing on it (followed from the typing frames it relays, so that if it vanishes the others can end
 * those indicators, which was its job).
 */
import type { PresenceStatus } from "../../realtime/frames";
import type { PresentPrincipal } from "../../realtime/presence";
import { relayPeers } from "../../metrics/registry";

export interface Peer {
  lastSeen: number;
  /** `${conversationId} ${userId}` → presence there. */
  presence: Map<string, { conversationId: string; userId: string; userType: string; status: PresenceStatus }>;
  /** `${conversationId} ${userId}` → who is typing there on that instance. */
  typing: Map<string, { conversationId: string; userId: string; userType: string }>;
}

const TYPING_STARTED = '{"event":"typing:started"';
const TYPING_STOPPED = '{"event":"typing:stopped"';
const key = (conversationId: string, userId: string) => `${conversationId} ${userId}`;

export class PeerDirectory {
  private readonly peers = new Map<string, Peer>();

  get size(): number {
    return this.peers.size;
  }

  ids(): string[] {
    return [...this.peers.keys()];
  }

  /** The peer an item came from, created when first heard (`isNew`). */
  heard(origin: string): { peer: Peer; isNew: boolean } {
    let peer = this.peers.get(origin);
    const isNew = !peer;
    if (!peer) {
      peer = { lastSeen: Date.now(), presence: new Map(), typing: new Map() };
      this.peers.set(origin, peer);
      relayPeers.inc();
    }
    peer.lastSeen = Date.now();
    return { peer, isNew };
  }

  /** Forgets a peer (it said bye, or fell silent); returns what it held. */
  forget(origin: string): Peer | undefined {
    const peer = this.peers.get(origin);
    if (this.peers.delete(origin)) relayPeers.dec();
    return peer;
  }

  /** Forgets every peer (this instance stops). */
  clear(): void {
    relayPeers.dec(this.peers.size);
    this.peers.clear();
  }

  /** Peers silent since before `cutoff` (ms since epoch). */
  silentSince(cutoff: number): string[] {
    const silent: string[] = [];
    for (const [origin, peer] of this.peers) if (peer.lastSeen < cutoff) silent.push(origin);
    return silent;
  }

  setPresence(peer: Peer, conversationId: string, userId: string, userType: string, status: PresenceStatus | undefined): void {
    const k = key(conversationId, userId);
    if (status) peer.presence.set(k, { conversationId, userId, userType, status });
    else peer.presence.delete(k);
  }

  statusIn(conversationId: string, principalId: string): PresenceStatus | undefined {
    for (const peer of this.peers.values()) {
      const entry = peer.presence.get(key(conversationId, principalId));
      if (entry) return entry.status;
    }
    return undefined;
  }

  presentIn(conversationId: string): PresentPrincipal[] {
    const present: PresentPrincipal[] = [];
    for (const peer of this.peers.values()) {
      for (const entry of peer.presence.values()) {
        if (entry.conversationId === conversationId) present.push({ userId: entry.userId, userType: entry.userType, status: entry.status });
      }
    }
    return present;
  }

  /** Follows a peer's typing indicators from a frame it relayed (frames without a sequence only). */
  trackTyping(peer: Peer, frame: string): void {
    const started = frame.startsWith(TYPING_STARTED);
    if (!started && !frame.startsWith(TYPING_STOPPED)) return;
    const { data } = JSON.parse(frame) as { data: { conversationId: string; userId: string; userType: string } };
    const k = key(data.conversationId, data.userId);
    if (started) peer.typing.set(k, { conversationId: data.conversationId, userId: data.userId, userType: data.userType });
    else peer.typing.delete(k);
  }
}
