/**
 * Control events in the console's timeline: a live `stream.*` frame and the stored message it was saved
 * as (replayed or read over REST) read the same, and say what happened in words.
 */
import { describe, expect, test } from "bun:test";
import type { ControlBroadcast, Message } from "../../src/client/index.ts";
import { controlOf, describeControl, inSequence, messageOfBroadcast } from "../../src/console/timeline";

const broadcast: ControlBroadcast = {
  event: "stream.pause",
  conversationId: "c1",
  messageId: "m7",
  sequence: 7,
  senderId: "alice",
  senderType: "user",
  runId: "answer-1",
  from: "active",
  to: "paused",
  effectiveAt: "2026-12-01T10:00:00.000Z",
};

describe("control events in the timeline", () => {
  test("a live frame becomes the stored message's twin: same id, sequence and control payload", () => {
    const message = messageOfBroadcast(broadcast);
    expect(message).toMatchObject({ id: "m7", sequence: 7, sender_id: "alice", content_type: "event", run_id: "answer-1" });
    expect(controlOf(message)).toMatchObject({ event: "stream.pause", runId: "answer-1", from: "active", to: "paused" });
    const stored = { ...message, metadata: { control: { event: "stream.pause", from: "active", to: "paused" } } } as Message;
    expect(controlOf(stored)).toEqual(controlOf(message)!);
  });

  test("described in words, with the run, the states, a target and a reason", () => {
    expect(describeControl(controlOf(messageOfBroadcast(broadcast))!)).toBe("paused run answer-1 (active → paused)");
    expect(describeControl({ event: "stream.cancel", runId: "r2", from: "paused", to: "cancelled", reason: "wrong answer" })).toBe(
      "cancelled run r2 (paused → cancelled): wrong answer",
    );
    expect(describeControl({ event: "stream.handoff", runId: "r3", from: "active", to: "active", target: { principalId: "agent:b" } })).toBe(
      "handed off run r3 to agent:b",
    );
    expect(describeControl({ event: "stream.pause" })).toBe("paused every run");
  });

  test("an ordinary message is no control event; messages sort by sequence", () => {
    const ordinary = { ...messageOfBroadcast(broadcast), content_type: "text/plain", content: "hi" };
    expect(controlOf(ordinary)).toBeUndefined();
    const [a, b] = [{ ...ordinary, id: "a", sequence: 9 }, { ...ordinary, id: "b", sequence: 3 }];
    expect(inSequence([a, b]).map((m) => m.id)).toEqual(["b", "a"]);
  });
});
