/**
 * Pure parts of the realtime protocol and the client: parsing client frames, and the client's sequence
 * tracker. The server side's pure stages have files of their own beside this one (frames, sequence-order,
 * rate-limit), as in src/realtime/.
 */
import { describe, expect, test } from "bun:test";
import { SequenceTracker } from "../../src/client/sequence-tracker";
import { parseClientFrame } from "../../src/realtime/protocol";

const conversationId = "0190d3c4-0000-7000-8000-000000000001";

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
