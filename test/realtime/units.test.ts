/**
 * The realtime layer's pure parts: event → frame mapping, ordering, the rate limit, and the client's
 * sequence tracker.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { SequenceTracker } from "../../src/client/sequence-tracker";
import type { DomainEvent } from "../../src/domain/domain-events";
import type { ConversationResource, MessageResource, ParticipantResource } from "../../src/domain/resources";
import { frameOfDomainEvent, principalFramesOfDomainEvent, type TopicFrame } from "../../src/realtime/frames";
import { parseClientFrame } from "../../src/realtime/protocol";
import { FrameRateLimit } from "../../src/realtime/rate-limit";
import { ReleaseLog, SequenceOrder } from "../../src/realtime/sequence-order";

// End-to-end tests start servers and processes: more than the runner's 5 s default.
setDefaultTimeout(60_000);

const conversationId = "0190d3c4-0000-7000-8000-000000000001";
const message = { id: "m1", conversation_id: conversationId, sequence: 7, content: "hi" } as unknown as MessageResource;
const participant = { conversation_id: conversationId, user_id: "u1", user_type: "agent", role: "member" } as ParticipantResource;
const conversation = { id: conversationId, type: "group", name: "g" } as ConversationResource;

describe("frameOfDomainEvent", () => {
  test("a new message wraps the JSON the domain serialised, without parsing it again", () => {
    const json = '{"id":"m1","sequence":7,"note":"kept as is"}';
    const frame = frameOfDomainEvent({ type: "message.created", conversationId, message, json })!;
    expect(frame).toEqual({ conversationId, frame: `{"event":"message:new","data":${json}}`, sequence: 7 });
    expect(JSON.parse(frame.frame)).toEqual({ event: "message:new", data: JSON.parse(json) });
  });

  test("each event maps to its frame, sequence and membership effect", () => {
    const cases: [DomainEvent, Partial<TopicFrame> & { event: string; data?: unknown }][] = [
      [{ type: "message.updated", conversationId, message, json: "{}" }, { event: "message:updated", data: {} }],
      [
        { type: "message.deleted", conversationId, message: { id: "m1", conversationId, sequence: 7, deletedAt: "t" } },
        { event: "message:deleted", data: { id: "m1", conversationId, sequence: 7, deletedAt: "t" } },
      ],
      [
        { type: "participant.added", conversationId, participant, conversation },
        { event: "participant:joined", data: { conversationId, userId: "u1", userType: "agent", role: "member" } },
      ],
      [
        { type: "participant.removed", conversationId, participant },
        { event: "participant:left", revoke: { principalId: "u1" } },
      ],
      [{ type: "participant.updated", conversationId, participant }, { event: "participant:updated" }],
      [{ type: "conversation.deleted", conversationId, orgId: null, participantIds: [] }, { event: "conversation:deleted", data: { id: conversationId }, revoke: { everyone: true } }],
    ];
    for (const [event, expected] of cases) {
      const frame = frameOfDomainEvent(event)!;
      const { event: name, data, ...rest } = expected;
      expect(JSON.parse(frame.frame).event).toBe(name);
      if (data !== undefined) expect(JSON.parse(frame.frame).data).toEqual(data);
      expect(frame.sequence).toBeUndefined();
      expect(frame).toMatchObject(rest);
    }
  });

  test("a control event goes out under its own name with its sequence", () => {
    const control = {
      event: "stream.cancel",
      conversationId,
      messageId: "m1",
      sequence: 9,
      senderId: "u",
      senderType: "user",
      effectiveAt: "t",
    };
    const frame = frameOfDomainEvent({ type: "control.sent", conversationId, message, control })!;
    expect(frame.sequence).toBe(9);
    expect(JSON.parse(frame.frame)).toEqual({ event: "stream.cancel", data: control });
  });
});

describe("principalFramesOfDomainEvent", () => {
  test("every participant of a new conversation, and whoever is added or removed, hears it", () => {
    const owner = { ...participant, user_id: "u0", role: "owner" } as ParticipantResource;
    const created = principalFramesOfDomainEvent({
      type: "conversation.created",
      conversationId,
      conversation: { ...conversation, participants: [owner, participant] },
    });
    expect(created.map((f) => [f.principalId, JSON.parse(f.frame)])).toEqual([
      ["u0", { event: "conversation:added", data: { conversation, role: "owner" } }],
      ["u1", { event: "conversation:added", data: { conversation, role: "member" } }],
    ]);
    expect(created[0].reload).toEqual({ conversationId, role: "owner" });
    const added = principalFramesOfDomainEvent({ type: "participant.added", conversationId, participant, conversation });
    expect(JSON.parse(added[0].frame)).toEqual({ event: "conversation:added", data: { conversation, role: "member" } });
    const removed = principalFramesOfDomainEvent({ type: "participant.removed", conversationId, participant });
    expect(removed).toEqual([{ principalId: "u1", frame: JSON.stringify({ event: "conversation:removed", data: { conversationId } }) }]);
    expect(principalFramesOfDomainEvent({ type: "participant.updated", conversationId, participant })).toEqual([]);
    const deleted = principalFramesOfDomainEvent({ type: "conversation.deleted", conversationId, orgId: null, participantIds: ["u0", "u1"] });
    expect(deleted.map((f) => [f.principalId, JSON.parse(f.frame)])).toEqual([
      ["u0", { event: "conversation:removed", data: { conversationId } }],
      ["u1", { event: "conversation:removed", data: { conversationId } }],
    ]);
  });
});

describe("SequenceOrder", () => {
  const frame = (sequence?: number, name = `f${sequence}`): TopicFrame => ({ conversationId, frame: name, sequence });

  test("frames in order pass at once", () => {
    const out: string[] = [];
    const order = new SequenceOrder((f) => out.push(f.frame));
    for (const s of [3, 4, 5]) order.push(frame(s));
    expect(out).toEqual(["f3", "f4", "f5"]);
  });

  test("a frame ahead of its predecessor waits for it; unsequenced frames queue behind", () => {
    const out: string[] = [];
    const order = new SequenceOrder((f) => out.push(f.frame));
    order.push(frame(1));
    order.push(frame(3));
    order.push(frame(undefined, "edit"));
    expect(out).toEqual(["f1"]);
    order.push(frame(2));
    expect(out).toEqual(["f1", "f2", "f3", "edit"]);
  });

  test("a gap that never fills is given up after the hold", async () => {
    const out: string[] = [];
    const order = new SequenceOrder((f) => out.push(f.frame), 20);
    order.push(frame(1));
    order.push(frame(4));
    order.push(frame(3));
    expect(out).toEqual(["f1"]);
    await Bun.sleep(40);
    expect(out).toEqual(["f1", "f3", "f4"]);
    order.push(frame(5));
    expect(out.at(-1)).toBe("f5");
  });

  test("forget releases what is held; idle conversations are pruned", () => {
    const out: string[] = [];
    const order = new SequenceOrder((f) => out.push(f.frame));
    order.push(frame(1));
    order.push(frame(3));
    order.forget(conversationId);
    expect(out).toEqual(["f1", "f3"]);
    order.push(frame(10), 0);
    order.prune(60_001, 60_000);
    // Pruned: the next frame starts a fresh state instead of waiting for 11.
    order.push(frame(20));
    expect(out.at(-1)).toBe("f20");
  });

  test("ReleaseLog keeps released sequences as ranges and forgets ranges idle for its window", () => {
    const log = new ReleaseLog(1000);
    for (const sequence of [1, 2, 3, 7, 5, 9]) log.record(conversationId, sequence, 0);
    for (const [sequence, released] of [[0, false], [1, true], [3, true], [4, false], [5, true], [6, false], [7, true], [8, false], [9, true], [10, false]] as const) {
      expect(log.has(conversationId, sequence)).toBe(released);
    }
    // Filling the holes joins the ranges; a repeated sequence changes nothing.
    log.record(conversationId, 4, 0);
    log.record(conversationId, 6, 0);
    log.record(conversationId, 8, 0);
    log.record(conversationId, 5, 0);
    for (let sequence = 1; sequence <= 9; sequence++) expect(log.has(conversationId, sequence)).toBe(true);
    // A range still being extended stays; one not extended for the window goes.
    log.record("other", 1, 0);
    log.record(conversationId, 10, 900);
    log.prune(1500);
    expect(log.has(conversationId, 1)).toBe(true);
    expect(log.has(conversationId, 10)).toBe(true);
    expect(log.has("other", 1)).toBe(false);
    log.prune(2000);
    expect(log.has(conversationId, 10)).toBe(false);
  });
  test("ReleaseLog answers like a set of every recorded sequence, whatever the order", () => {
    for (let round = 0; round < 20; round++) {
      const log = new ReleaseLog(1000);
      const recorded = new Set<number>();
      const sequences = Array.from({ length: 120 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
      for (const sequence of sequences.slice(0, 80)) {
        log.record(conversationId, sequence, 0);
        recorded.add(sequence);
        for (let probe = 0; probe <= 121; probe++) expect(log.has(conversationId, probe)).toBe(recorded.has(probe));
      }
    }
  });
});

describe("FrameRateLimit", () => {
  test("a burst, then the steady rate; flooding after enough rejections", () => {
    const limit = new FrameRateLimit(10, 5, 3, 5000, 0);
    for (let i = 0; i < 5; i++) expect(limit.take(0)).toBe(true);
    expect(limit.take(0)).toBe(false);
    expect(limit.take(100)).toBe(true);
    expect(limit.take(100)).toBe(false);
    expect(limit.isFlooding()).toBe(false);
    limit.take(100);
    limit.take(100);
    expect(limit.isFlooding()).toBe(true);
  });
});

describe("parseClientFrame", () => {
  test("keeps the ack of a rejected frame and refuses odd ack ids", () => {
    expect(parseClientFrame({ event: "nope", ack: "x" })).toMatchObject({ ok: false, code: "unknown_event", ack: "x" });
    expect(parseClientFrame({ event: "ping", ack: { id: 1 } })).toMatchObject({ ok: false, code: "invalid_frame" });
    expect(parseClientFrame({ event: "ping", ack: "x".repeat(200) })).toMatchObject({ ok: false, code: "invalid_frame" });
    expect(parseClientFrame({ event: "join:conversation", data: conversationId })).toMatchObject({ ok: true });
  });
});

describe("SequenceTracker", () => {
  test("resumes from the gap-free point and recognises duplicates", () => {
    const tracker = new SequenceTracker(0);
    expect(tracker.see(1)).toBe(true);
    expect(tracker.see(3)).toBe(true);
    expect(tracker.resumeFrom).toBe(1);
    expect(tracker.highest).toBe(3);
    expect(tracker.see(3)).toBe(false);
    expect(tracker.see(2)).toBe(true);
    expect(tracker.resumeFrom).toBe(3);
    expect(tracker.see(1)).toBe(false);
  });

  test("a join's lastSequence covers what was replayed; a start point without since is not a vouch", () => {
    const tracker = new SequenceTracker();
    expect(tracker.see(5)).toBe(true);
    tracker.startFrom(10);
    expect(tracker.resumeFrom).toBe(10);
    // A frame committed just before watching started still counts as new.
    expect(tracker.see(9)).toBe(true);
    expect(tracker.see(11)).toBe(true);
    expect(tracker.resumeFrom).toBe(11);
    tracker.coveredUpTo(20);
    expect(tracker.see(15)).toBe(false);
    expect(tracker.see(21)).toBe(true);
  });
});
