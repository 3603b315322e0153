/**
 * Which principals a committed domain event tells directly (conversation:added / conversation:removed).
 */
import { describe, expect, test } from "bun:test";
import type { ConversationResource, ParticipantResource } from "../../src/domain/resources";
import { principalItem } from "../../src/broker/postgres/relay-items";
import { principalFramesOfDomainEvent } from "../../src/realtime/frames";

const conversationId = "0190d3c4-0000-7000-8000-000000000001";
const participant = { conversation_id: conversationId, user_id: "u1", user_type: "agent", role: "member" } as ParticipantResource;
const conversation = { id: conversationId, type: "group", name: "g" } as ConversationResource;

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
    const removed = principalFramesOfDomainEvent({ type: "participant.removed", conversationId, participant, orgId: null });
    expect(removed).toEqual([{ principalId: "u1", frame: JSON.stringify({ event: "conversation:removed", data: { conversationId } }) }]);
    const removedInOrg = principalFramesOfDomainEvent({ type: "participant.removed", conversationId, participant, orgId: "org-a" });
    expect(removedInOrg).toEqual([{ principalId: "u1", frame: JSON.stringify({ event: "conversation:removed", data: { conversationId } }), orgId: "org-a" }]);
    expect(principalFramesOfDomainEvent({ type: "participant.updated", conversationId, participant })).toEqual([]);
    const deleted = principalFramesOfDomainEvent({ type: "conversation.deleted", conversationId, orgId: null, participantIds: ["u0", "u1"] });
    expect(deleted.map((f) => [f.principalId, JSON.parse(f.frame)])).toEqual([
      ["u0", { event: "conversation:removed", data: { conversationId } }],
      ["u1", { event: "conversation:removed", data: { conversationId } }],
    ]);
  });

  test("a frame about a conversation of an organisation names it, also when relayed, for sockets acting for the principal", () => {
    const inOrg = { ...conversation, org_id: "org-a" };
    const [added] = principalFramesOfDomainEvent({ type: "participant.added", conversationId, participant, conversation: inOrg });
    expect(added.orgId).toBe("org-a");
    expect(principalItem(added, 8000)).toMatchObject({ k: "u", u: "u1", o: "org-a" });
    expect(principalItem(added, 10)).toMatchObject({ k: "u", u: "u1", c: conversationId, o: "org-a" });
    const [deleted] = principalFramesOfDomainEvent({ type: "conversation.deleted", conversationId, orgId: "org-a", participantIds: ["u1"] });
    expect(deleted.orgId).toBe("org-a");
    const [orgless] = principalFramesOfDomainEvent({ type: "participant.added", conversationId, participant, conversation: { ...conversation, org_id: null } });
    expect(orgless.orgId).toBeUndefined();
    expect(principalItem(orgless, 8000)).not.toHaveProperty("o");
  });
});
