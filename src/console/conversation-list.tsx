/**
 * The conversations you take part in, newest activity first, with unread counts; a form to start one.
 * Every listed conversation is joined on the socket, so the list moves and counts live; after a
 * reconnect the SDK replays what each missed, and the list is read again for the conversations joined or
 * left meanwhile (notifications of being added or removed are not replayed).
 */
import { useEffect, useState } from "preact/hooks";
import type { ConversationSummary, ParticipantType, PrincipalInfo, RealtimeClient } from "../client/index.ts";
import { client, errorText } from "./api.ts";

const LISTED = 50;

export function ConversationList({ socket, user, selectedId }: { socket: RealtimeClient; user: PrincipalInfo; selectedId?: string }) {
  const [conversations, setConversations] = useState<ConversationSummary[]>([]);
  const [error, setError] = useState<string>();
  const [creating, setCreating] = useState(false);

  useEffect(() => {
    let current = true;
    const load = async () => {
      try {
        const list = await client.listConversations({ limit: LISTED });
        if (!current) return;
        // A conversation already listed keeps its count: the live frames (and the replay after a
        // reconnect) have kept it exact, and a count read now could include some of them twice.
        setConversations((known) => list.map((c) => ({ ...c, unread_count: known.find((k) => k.id === c.id)?.unread_count ?? c.unread_count })));
        setError(undefined);
        await socket.connect();
        await Promise.all(list.filter((c) => !socket.joined().includes(c.id)).map((c) => socket.join(c.id).catch(() => {})));
      } catch (failure) {
        if (current) setError(errorText(failure));
      }
    };
    const update = (id: string, change: (c: ConversationSummary) => ConversationSummary) =>
      setConversations((list) => list.map((c) => (c.id === id ? change(c) : c)));
    const remove = (id: string) => {
      setConversations((list) => list.filter((c) => c.id !== id));
      if (location.hash === `#/c/${id}`) location.hash = "#/";
    };
    let opened = false;
    const offs = [
      // Every session after the first is a reconnect: what happened meanwhile is read again.
      socket.on("open", () => (opened ? void load() : (opened = true))),
      socket.on("conversation:added", () => void load()),
      socket.on("conversation:removed", ({ conversationId }) => remove(conversationId)),
      socket.on("conversation:deleted", ({ id }) => remove(id)),
      socket.on("conversation:updated", (changed) => update(changed.id, (c) => ({ ...c, ...changed }))),
      socket.on("message:new", (message) =>
        setConversations((list) => {
          const found = list.find((c) => c.id === message.conversation_id);
          if (!found) return list;
          const unread = message.sender_id !== user.id && message.content_type !== "event" && location.hash !== `#/c/${found.id}`;
          const moved = { ...found, updated_at: message.created_at, unread_count: found.unread_count + (unread ? 1 : 0) };
          return [moved, ...list.filter((c) => c !== found)];
        }),
      ),
    ];
    void load();
    return () => ((current = false), offs.forEach((off) => off()));
  }, [socket]);

  // An open conversation is read, and so is what arrived while it was open, once it is left.
  useEffect(() => {
    const read = () => setConversations((list) => list.map((c) => (c.id === selectedId ? { ...c, unread_count: 0 } : c)));
    if (selectedId) read();
    return () => selectedId && read();
  }, [selectedId]);

  return (
    <section class="conversations" aria-labelledby="conversations-title">
      <div class="pane-head">
        <h2 id="conversations-title">Conversations</h2>
        <button type="button" aria-expanded={creating} onClick={() => setCreating(!creating)}>
          New conversation
        </button>
      </div>
      {creating && <NewConversation onCreated={(id) => ((location.hash = `#/c/${id}`), setCreating(false))} />}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {conversations.length === 0 && !error ? (
        <p class="empty">No conversations yet.</p>
      ) : (
        <ul class="conversation-list">
          {conversations.map((c) => ({ ...c, unread_count: c.id === selectedId ? 0 : c.unread_count })).map((c) => (
            <li key={c.id}>
              <a href={`#/c/${c.id}`} aria-current={c.id === selectedId ? "page" : undefined}>
                <span class="title">{c.name ?? (c.type === "private" ? "Private conversation" : "Untitled")}</span>
                <span class="meta">
                  {c.type}
                  {c.org_id ? ` · ${c.org_id}` : ""}
                </span>
                {c.unread_count > 0 && (
                  <span class="unread" aria-label={`${c.unread_count >= 100 ? "100 or more" : c.unread_count} unread`}>
                    {c.unread_count >= 100 ? "100+" : c.unread_count}
                  </span>
                )}
              </a>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export interface ParticipantInput {
  userId: string;
  userType: ParticipantType;
}

export const PARTICIPANT_TYPES: ParticipantType[] = ["user", "agent", "service", "bot"];

function NewConversation({ onCreated }: { onCreated: (id: string) => void }) {
  const [type, setType] = useState<"group" | "private">("group");
  const [rows, setRows] = useState<ParticipantInput[]>([{ userId: "", userType: "user" }]);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const name = String(form.get("name") ?? "").trim();
    setBusy(true);
    try {
      const created = await client.createConversation({
        type,
        ...(name && { name }),
        participants: rows.filter((row) => row.userId.trim()).map((row) => ({ userId: row.userId.trim(), userType: row.userType })),
      });
      onCreated(created.id);
    } catch (failure) {
      setError(errorText(failure));
    } finally {
      setBusy(false);
    }
  };
  const change = (index: number, patch: Partial<ParticipantInput>) => setRows(rows.map((row, i) => (i === index ? { ...row, ...patch } : row)));
  return (
    <form class="new-conversation card" onSubmit={submit} aria-label="New conversation">
      <label>
        Type
        <select name="type" value={type} onChange={(e) => setType(e.currentTarget.value as "group" | "private")}>
          <option value="group">Group</option>
          <option value="private">Private (two people)</option>
        </select>
      </label>
      <label>
        Name
        <input name="name" required={type === "group"} maxLength={200} />
      </label>
      <fieldset>
        <legend>Participants</legend>
        {rows.map((row, index) => (
          <div class="row" key={index}>
            <label>
              Participant id
              <input value={row.userId} onInput={(e) => change(index, { userId: e.currentTarget.value })} />
            </label>
            <label>
              Participant type
              <select value={row.userType} onChange={(e) => change(index, { userType: e.currentTarget.value as ParticipantType })}>
                {PARTICIPANT_TYPES.map((t) => (
                  <option value={t}>{t}</option>
                ))}
              </select>
            </label>
          </div>
        ))}
        {type === "group" && (
          <button type="button" class="link" onClick={() => setRows([...rows, { userId: "", userType: "user" }])}>
            Another participant
          </button>
        )}
      </fieldset>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <button type="submit" disabled={busy}>
        Create
      </button>
    </form>
  );
}
