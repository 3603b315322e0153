/**
 * Server frames as they go on the wire: the frame builders, what each committed domain event becomes, and
 * the frame of a stored message read back for replay or to fill a gap (the same bytes as the live frame).
 */
import { describe, expect, test } from "bun:test";
import type { ControlBroadcast } from "../../src/domain/control-events";
import type { DomainEvent } from "../../src/domain/domain-events";
import type { ConversationResource, MessageResource, ParticipantResource } from "../../src/domain/resources";
import {
  ackErrorFrame,
  ackFrame,
  errorFrame,
  frameOfDomainEvent,
  frameOfStoredMessage,
  frameWithJson,
  presenceFrame,
  serverFrame,
  typingFrame,
  type TopicFrame,
} from "../../src/realtime/frames";

const conversationId = "0190d3c4-0000-7000-8000-000000000001";
const message = { id: "m1", conversation_id: conversationId, sequence: 7, content: "hi" } as unknown as MessageResource;
const participant = { conversation_id: conversationId, user_id: "u1", user_type: "agent", role: "member" } as ParticipantResource;

/** A message as the database returns it (every column), for the stored-message frames. */
function storedMessage(overrides: Partial<MessageResource> = {}): MessageResource {
  return {
    id: "0190d3c4-0000-7000-8000-0000000000aa",
    conversation_id: conversationId,
    sender_id: "agent:planner",
    sender_type: "agent",
    content: "hello",
    content_type: "text",
    reply_to: null,
    org_id: null,
    run_id: null,
    trace_id: null,
    sequence: 12,
    priority: "normal",
    interruptible: true,
    preempted_by: null,
    created_at: "2026-12-01T10:00:00.000Z",
    updated_at: null,
    deleted_at: null,
    metadata: {},
    version: 1,
    data_class: null,
    policy_ref: null,
    stream_state: null,
    ...overrides,
  } as MessageResource;
}

describe("frame builders", () => {
  test("serverFrame and frameWithJson give the same frame, the latter without serialising the data again", () => {
    const data = { id: "m1", text: 'quote " and \\ backslash' };
    const json = JSON.stringify(data);
    expect(JSON.parse(serverFrame("message:new", data))).toEqual({ event: "message:new", data });
    expect(frameWithJson("message:new", json)).toBe(serverFrame("message:new", data));
  });

  test("an ack keeps the client's ack id as it was sent: a string stays a string, a number a number", () => {
    expect(JSON.parse(ackFrame("a-1", '{"joined":true}'))).toEqual({ event: "ack", ack: "a-1", ok: true, data: { joined: true } });
    expect(JSON.parse(ackFrame(7, "null"))).toEqual({ event: "ack", ack: 7, ok: true, data: null });
    // An ack id is client input: it is escaped, not spliced into the frame.
    expect(JSON.parse(ackFrame('x","ok":false,"y":"', "{}"))).toEqual({ event: "ack", ack: 'x","ok":false,"y":"', ok: true, data: {} });
  });

  test("a failed ack and an error frame carry the code and message; the error names the event only when given", () => {
    expect(JSON.parse(ackErrorFrame(3, "forbidden", "not a participant"))).toEqual({
      event: "ack",
      ack: 3,
      ok: false,
      error: { code: "forbidden", message: "not a participant" },
    });
    expect(JSON.parse(errorFrame("rate_limited", "slow down"))).toEqual({ event: "error", data: { code: "rate_limited", message: "slow down" } });
    expect(JSON.parse(errorFrame("invalid_frame", "bad", "join:conversation"))).toEqual({
      event: "error",
      data: { code: "invalid_frame", message: "bad", event: "join:conversation" },
    });
  });

  test("presence and typing frames name the conversation and the principal", () => {
    expect(JSON.parse(presenceFrame(conversationId, "u1", "user", "away"))).toEqual({
      event: "presence:changed",
      data: { userId: "u1", userType: "user", status: "away", conversationId },
    });
    for (const event of ["typing:started", "typing:stopped"] as const) {
      expect(JSON.parse(typingFrame(event, conversationId, "agent:a", "agent"))).toEqual({
        event,
        data: { conversationId, userId: "agent:a", userType: "agent" },
      });
    }
  });
});

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
        { type: "message.deleted", conversationId, message: { id: "m1", conversationId, sequence: 7, deletedAt: "t" }, deletedBy: "u1" },
        { event: "message:deleted", data: { id: "m1", conversationId, sequence: 7, deletedAt: "t" } },
      ],
      [
        { type: "participant.added", conversationId, participant, conversation: { id: conversationId } as ConversationResource },
        { event: "participant:joined", data: { conversationId, userId: "u1", userType: "agent", role: "member" } },
      ],
      [
        { type: "participant.removed", conversationId, participant, orgId: null },
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

  test("frames another instance re-reads when too large to relay say what to read; only removals revoke", () => {
    const conversation = { id: conversationId, name: "renamed" } as unknown as ConversationResource;
    const updated = frameOfDomainEvent({ type: "message.updated", conversationId, message, json: '{"id":"m1"}' })!;
    expect(updated.reload).toEqual({ messageId: "m1" });
    const renamed = frameOfDomainEvent({ type: "conversation.updated", conversationId, conversation })!;
    expect(renamed.reload).toEqual({ conversation: true });
    expect(JSON.parse(renamed.frame)).toEqual({ event: "conversation:updated", data: conversation });
    const others: DomainEvent[] = [
      { type: "message.created", conversationId, message, json: "{}" },
      { type: "participant.added", conversationId, participant, conversation },
      { type: "participant.updated", conversationId, participant },
    ];
    for (const event of others) {
      const frame = frameOfDomainEvent(event)!;
      expect(frame.reload).toBeUndefined();
      expect(frame.revoke).toBeUndefined();
    }
  });
});

describe("frameOfStoredMessage", () => {
  test("a stored message gives the frame its live message:new had", () => {
    const stored = storedMessage();
    const frame = frameOfStoredMessage(stored, "live");
    expect(frame).toEqual(frameOfDomainEvent({ type: "message.created", conversationId, message: stored, json: JSON.stringify(stored) })!);
    expect(frame.sequence).toBe(12);
    expect(JSON.parse(frame.frame)).toEqual({ event: "message:new", data: stored });
  });

  test("a stored control message gives its stream event, as it went out live", () => {
    const stored = storedMessage({
      content: "stream.cancel",
      content_type: "event",
      run_id: "run-1",
      metadata: { control: { event: "stream.cancel", reason: "user stopped it" }, serviceId: "svc", note: "kept" },
    });
    const frame = frameOfStoredMessage(stored, "live");
    const expected: ControlBroadcast = {
      event: "stream.cancel",
      conversationId,
      messageId: stored.id,
      sequence: 12,
      senderId: "agent:planner",
      senderType: "agent",
      reason: "user stopped it",
      runId: "run-1",
      effectiveAt: "2026-12-01T10:00:00.000Z",
      metadata: { note: "kept" },
    };
    expect(frame).toMatchObject({ conversationId, sequence: 12 } satisfies Partial<TopicFrame>);
    expect(JSON.parse(frame.frame)).toEqual({ event: "stream.cancel", data: expected });
    expect(frame).toEqual(frameOfDomainEvent({ type: "control.sent", conversationId, message: stored, control: expected })!);
  });

  test("a deleted control message keeps its place as a message:new, not a stream event", () => {
    const stored = storedMessage({ content: "", content_type: "event", deleted_at: "2026-12-01T10:01:00.000Z", metadata: { control: { event: "stream.pause" } } });
    const frame = frameOfStoredMessage(stored, "live");
    expect(frame.sequence).toBe(12);
    expect(JSON.parse(frame.frame)).toEqual({ event: "message:new", data: stored });
  });

  test("in a replay (history) every stored message is a message:new, control messages included", () => {
    const stored = storedMessage({ content: "stream.pause", content_type: "event", metadata: { control: { event: "stream.pause" } } });
    const frame = frameOfStoredMessage(stored, "replay");
    expect(frame.sequence).toBe(12);
    expect(JSON.parse(frame.frame)).toEqual({ event: "message:new", data: stored });
  });
});
