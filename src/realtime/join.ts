/**
 * Joining a conversation with `since`: replay from the database without loss or duplicates, then live.
 *
 * The connection is first registered as joining, so live frames for the conversation are buffered for it;
 * the replay query runs; then, in one synchronous step, the replay is sent, the buffered frames above the
 * replayed sequence follow, and the socket subscribes to the topic. JavaScript runs that step without
 * interruption, so no frame can fall between replay and live. docs/realtime.md explains the contract.
 */
import { fail } from "../core/errors";
import type { MessageResource, RunResource } from "../domain/resources";
import { wsJoins, wsReplayedMessages, wsReplays, wsReplaysTruncated } from "../metrics/registry";
import type { Connection, PendingJoin } from "./connection";
import { deltaOf, frameOfStoredMessage, frameWithJson } from "./frames";
import type { PresentPrincipal } from "./presence";
import type { LiveStreams, RealtimeStore } from "./store";

/**
 * A replayed message younger than this may still have its live frame on the way (committed, not yet
 * emitted); older ones went out long ago. Compares the database's created_at with this host's clock.
 */
const IN_FLIGHT_AGE_MS = 5_000;
/** The longest a join waits for such frames (a gap from another instance never fills). */
const IN_FLIGHT_WAIT_MS = 1_000;

export interface JoinResult {
  conversationId: string;
  /** Everything up to this sequence has been sent (or preceded `since`); later messages arrive live. */
  lastSequence: number;
  replayed: number;
  /** More than the replay limit was missing: messages after `lastSequence` up to the live ones are to be paged over REST. */
  truncated: boolean;
  /** Extension: participants present in the conversation now. */
  presence: PresentPrincipal[];
  /** Extension: the conversation's runs not ended (active, paused, preempted), oldest first. */
  runs: RunResource[];
  /**
   * Extension: streaming messages whose content so far was sent (in the replay as `message:new`, or as
   * `message:updated` for those at or before `since`), with its length; live deltas continue from there.
   */
  streams: { messageId: string; length: number }[];
}

/** What a join needs of the hub: its reads, its limits, and the registration of joiners and subscribers. */
export interface JoinSite {
  store: RealtimeStore;
  streams: LiveStreams;
  replayLimit: number;
  /** A replay stops (truncated) after this many bytes, so as not to queue it all at once. */
  replayBudgetBytes: number;
  /** Starts ordering the conversation's live frames from `committed` on. */
  track(conversationId: string, committed: number): void;
  /** Whether the live frame of this sequence has already gone out. */
  released(conversationId: string, sequence: number): boolean;
  startJoining(connection: Connection, conversationId: string, pending: PendingJoin): void;
  endJoining(connection: Connection, conversationId: string, pending: PendingJoin): void;
  /** Stops a socket's topic without announcing anything (the join starts over). */
  unsubscribe(connection: Connection, conversationId: string): void;
  /** Subscribes the socket, synchronously; presence is announced for participants. */
  subscribe(connection: Connection, conversationId: string, participant: boolean): PresentPrincipal[];
}

/**
 * Subscribes a connection to a conversation, replaying what it missed after `since`. Joining again
 * starts over (a client may re-join with an earlier `since` to re-read).
 */
export async function joinConversation(site: JoinSite, connection: Connection, conversationId: string, since?: number): Promise<JoinResult> {
  site.unsubscribe(connection, conversationId);
  const pending: PendingJoin = { buffer: [] };
  site.startJoining(connection, conversationId, pending);
  try {
    const access = await site.store.authorizeReader(connection.principal, conversationId);
    const committed = access.lastSequence;
    // Live frames of this conversation are ordered from here on, even if the first one to arrive is not the next.
    site.track(conversationId, committed);
    const limit = site.replayLimit;
    const noReplay: MessageResource[] = [];
    let [replay, openRuns, openStreams] = await Promise.all([
      since !== undefined && since < committed ? site.store.messagesSince(conversationId, since, limit + 1) : noReplay,
      site.store.openRuns(conversationId),
      site.store.openStreams(conversationId),
    ]);
    // Streams held by another instance: their content so far is brought here first (a mirror), so that
    // it is read below in the same step as for a stream held here.
    const elsewhere = [...openStreams, ...replay].filter((m) => m.stream_state === "streaming" && site.streams.contentOf(m.id) === undefined);
    if (elsewhere.length > 0) await Promise.all(elsewhere.map((m) => site.streams.follow(m.id, m.conversation_id)));
    let truncated = replay.length > limit;
    if (truncated) replay = replay.slice(0, limit);
    // A message committed just before the replay query may not have gone out live yet. Were it to go out
    // after the subscription, this socket would receive it twice: wait, buffering, until it has passed.
    const awaiting = notYetReleased(site, conversationId, replay);
    if (awaiting.size > 0 && !connection.closed && !pending.revoked) await settle(pending, awaiting);
    if (connection.closed) throw fail.connection_closed();
    if (pending.revoked) throw fail.not_participant();

    // From here to the subscription nothing awaits, so no live frame can slip between replay and topic.
    let lastSequence = since ?? committed;
    let replayed = 0;
    let budget = site.replayBudgetBytes;
    // A stream's content is taken here, in the step that subscribes: every delta published before it is
    // in that content (the buffered ones are dropped), every delta after it comes live from its length on.
    const streamed = new Map<string, number>();
    const withContentSoFar = (message: MessageResource): MessageResource => {
      if (message.stream_state !== "streaming") return message;
      const content = site.streams.contentOf(message.id) ?? message.content;
      streamed.set(message.id, content.length);
      return content === message.content ? message : { ...message, content };
    };
    connection.socket.cork(() => {
      const snapshotUpTo = since ?? committed;
      for (const open of openStreams) {
        if (open.sequence <= snapshotUpTo) connection.send(frameWithJson("message:updated", JSON.stringify(withContentSoFar(open))));
      }
      for (const stored of replay) {
        const message = withContentSoFar(stored);
        const { frame } = frameOfStoredMessage(message, "replay");
        if (replayed > 0 && budget - frame.length < 0) {
          truncated = true;
          break;
        }
        budget -= frame.length;
        connection.send(frame);
        lastSequence = message.sequence;
        replayed++;
      }
      const lastReplayed = lastSequence;
      for (const frame of pending.buffer) {
        const delta = streamed.size > 0 ? deltaOf(frame) : undefined;
        if (delta && delta.end <= (streamed.get(delta.messageId) ?? -1)) continue;
        if (frame.sequence !== undefined) {
          if (since !== undefined && frame.sequence <= lastReplayed) continue;
          if (!truncated) lastSequence = Math.max(lastSequence, frame.sequence);
        }
        connection.send(frame.frame);
      }
    });
    site.endJoining(connection, conversationId, pending);
    const presence = site.subscribe(connection, conversationId, access.participant);
    wsJoins.inc();
    if (replayed > 0) {
      wsReplays.inc();
      wsReplayedMessages.inc(replayed);
    }
    if (truncated) wsReplaysTruncated.inc();
    const streams = [...streamed].map(([messageId, length]) => ({ messageId, length }));
    return { conversationId, lastSequence, replayed, truncated, presence, runs: openRuns, streams };
  } finally {
    site.endJoining(connection, conversationId, pending);
  }
}

/** Recent replayed messages whose live frame has not gone out yet. */
function notYetReleased(site: JoinSite, conversationId: string, replay: MessageResource[]): Set<number> {
  const awaiting = new Set<number>();
  const now = Date.now();
  for (const message of replay) {
    const age = now - new Date(message.created_at).getTime();
    if (age < IN_FLIGHT_AGE_MS && !site.released(conversationId, message.sequence)) awaiting.add(message.sequence);
  }
  return awaiting;
}

/** Resolves when every awaited sequence has been delivered to the join's buffer, or after a bound. */
function settle(pending: PendingJoin, awaiting: Set<number>): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pending.awaiting = undefined;
      pending.settled = undefined;
      resolve();
    };
    const timer = setTimeout(done, IN_FLIGHT_WAIT_MS);
    pending.awaiting = awaiting;
    pending.settled = done;
  });
}
