/**
 * One conversation: the timeline (messages live, streaming ones as their text grows, control events as
 * events), the composer (send, reply, edit; typing is announced), the runs with the buttons you may use,
 * and the participants with their presence.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { ConversationRole, Message, ParticipantType, PrincipalInfo, RealtimeClient, Run } from "../client/index.ts";
import { client, nameOf, timeOf } from "./api.ts";
import { ConversationModel, type ConversationSnapshot } from "./conversation-model.ts";
import { PARTICIPANT_TYPES } from "./conversation-list.tsx";
import { RUN_EVENT, runActions, type RunAction } from "./run-permissions.ts";
import { controlOf, describeControl } from "./timeline.ts";

function useConversation(id: string, socket: RealtimeClient) {
  const [snapshot, setSnapshot] = useState<ConversationSnapshot>({ messages: [], runs: [], typing: [], presence: {}, loaded: false });
  const model = useMemo(() => new ConversationModel(client, socket, id, () => setSnapshot(model.snapshot())), [id, socket]);
  useEffect(() => {
    void model.start();
    return () => {
      model.dispose();
      // Leaving reads what arrived while it was open (a read marks last_read_at).
      void client.listMessages(id, { limit: 1 }).catch(() => {});
    };
  }, [model]);
  return { snapshot, model };
}

export function ConversationView({ id, socket, user }: { id: string; socket: RealtimeClient; user: PrincipalInfo }) {
  const { snapshot, model } = useConversation(id, socket);
  const [replyTo, setReplyTo] = useState<Message>();
  const [editing, setEditing] = useState<Message>();
  const { conversation } = snapshot;
  const role = conversation?.participants.find((p) => p.user_id === user.id)?.role;
  const byId = useMemo(() => new Map(snapshot.messages.map((m) => [m.id, m])), [snapshot.messages]);

  if (!snapshot.loaded && !snapshot.error) return <p class="empty">Loading the conversation…</p>;
  if (!conversation) {
    return (
      <p role="alert" class="error">
        {snapshot.error}
      </p>
    );
  }
  const act = (action: Promise<unknown>) => action.then(() => model.report(), (failure) => model.report(failure));
  return (
    <div class="conversation">
      <header class="conversation-head">
        <a class="back" href="#/">
          ← Conversations
        </a>
        <h2>{conversation.name ?? (conversation.type === "private" ? "Private conversation" : "Untitled")}</h2>
        <p class="meta">
          {conversation.type}
          {conversation.org_id ? ` · organisation ${conversation.org_id}` : ""}
          {role ? ` · you are ${role === "member" ? "a member" : `the ${role}`}` : " · you are watching"}
        </p>
      </header>
      {snapshot.error && (
        <p role="alert" class="error">
          {snapshot.error}
        </p>
      )}
      <div class="conversation-body">
        <section class="timeline-pane" aria-label="Messages">
          <Timeline
            messages={snapshot.messages}
            byId={byId}
            user={user}
            role={role}
            onReply={setReplyTo}
            onEdit={setEditing}
            onDelete={(m) => act(socket.delete(m.id))}
          />
          <Typing ids={snapshot.typing} user={user} />
          {role && (
            <Composer
              key={editing?.id ?? "new"}
              conversationId={id}
              socket={socket}
              replyTo={replyTo}
              editing={editing}
              onDone={() => (setReplyTo(undefined), setEditing(undefined))}
              act={act}
            />
          )}
        </section>
        <aside class="side-pane">
          <Runs runs={snapshot.runs} user={user} role={role} onAction={(run, action) => act(socket.control(id, { event: RUN_EVENT[action], runId: run.id }))} />
          <Participants snapshot={snapshot} user={user} role={role} act={act} />
        </aside>
      </div>
    </div>
  );
}

function Timeline(props: {
  messages: Message[];
  byId: Map<string, Message>;
  user: PrincipalInfo;
  role?: ConversationRole;
  onReply: (m: Message) => void;
  onEdit: (m: Message) => void;
  onDelete: (m: Message) => void;
}) {
  const list = useRef<HTMLOListElement>(null);
  const last = props.messages[props.messages.length - 1];
  // Follow the newest message (and a stream's growing text) unless the reader scrolled up.
  useEffect(() => {
    const element = list.current;
    if (element && element.scrollHeight - element.scrollTop - element.clientHeight < 160) element.scrollTop = element.scrollHeight;
  }, [props.messages.length, last?.content]);
  if (props.messages.length === 0) return <p class="empty">No messages yet. Say hello.</p>;
  return (
    <ol class="timeline" ref={list}>
      {props.messages.map((message) => {
        const control = controlOf(message);
        if (control) {
          return (
            <li key={message.id} class="event" data-sequence={message.sequence}>
              <span class="who">{nameOf(message.sender_id, props.user)}</span> {describeControl(control)}
              <time dateTime={message.created_at}>{timeOf(message.created_at)}</time>
            </li>
          );
        }
        return <MessageItem key={message.id} {...props} message={message} />;
      })}
    </ol>
  );
}

function MessageItem({ message, byId, user, role, onReply, onEdit, onDelete }: Parameters<typeof Timeline>[0] & { message: Message }) {
  const mine = message.sender_id === user.id;
  const repliedTo = message.reply_to ? byId.get(message.reply_to) : undefined;
  const streaming = message.stream_state === "streaming";
  return (
    <li class={`message${mine ? " mine" : ""}`} data-sequence={message.sequence} aria-label={`Message ${message.sequence} from ${nameOf(message.sender_id, user)}`}>
      <div class="message-head">
        <span class="who">{nameOf(message.sender_id, user)}</span>
        <time dateTime={message.created_at}>{timeOf(message.created_at)}</time>
        <span class="sequence">#{message.sequence}</span>
        {message.version > 1 && <span class="edited">edited</span>}
        {message.run_id && <span class="run-tag">run {message.run_id}</span>}
        {message.stream_state && (
          <span class={`stream-state ${message.stream_state}`} data-stream-state={message.stream_state}>
            {message.stream_state}
          </span>
        )}
      </div>
      {message.reply_to && (
        <p class="reply-ref">↩ {repliedTo ? `#${repliedTo.sequence} ${nameOf(repliedTo.sender_id, user)}: ${repliedTo.content.slice(0, 80)}` : "an earlier message"}</p>
      )}
      <p class={`content${streaming ? " growing" : ""}`}>{message.content}</p>
      {role && (
        <div class="actions">
          <button type="button" class="link" onClick={() => onReply(message)}>
            Reply
          </button>
          {mine && !streaming && (
            <button type="button" class="link" onClick={() => onEdit(message)}>
              Edit
            </button>
          )}
          {(mine || role !== "member") && (
            <button type="button" class="link" onClick={() => onDelete(message)}>
              Delete
            </button>
          )}
        </div>
      )}
    </li>
  );
}

function Typing({ ids, user }: { ids: string[]; user: PrincipalInfo }) {
  const others = ids.filter((id) => id !== user.id);
  return (
    <p class="typing" role="status" aria-live="polite">
      {others.length > 0 ? `${others.map((id) => nameOf(id, user)).join(", ")} ${others.length === 1 ? "is" : "are"} typing…` : ""}
    </p>
  );
}

/** Announces typing at most every few seconds while the text changes (the server ends it by itself after a while). */
const TYPING_EVERY_MS = 3_000;

function Composer(props: {
  conversationId: string;
  socket: RealtimeClient;
  replyTo?: Message;
  editing?: Message;
  onDone: () => void;
  act: (action: Promise<unknown>) => Promise<unknown>;
}) {
  const { conversationId, socket, replyTo, editing } = props;
  const [text, setText] = useState(editing?.content ?? "");
  const typingSince = useRef(0);
  const stopTyping = () => {
    if (typingSince.current === 0) return;
    typingSince.current = 0;
    void socket.stopTyping(conversationId).catch(() => {});
  };
  useEffect(() => stopTyping, []);
  const input = (value: string) => {
    setText(value);
    if (!value.trim()) return stopTyping();
    if (Date.now() - typingSince.current > TYPING_EVERY_MS) {
      typingSince.current = Date.now();
      void socket.startTyping(conversationId).catch(() => {});
    }
  };
  const submit = async (event?: Event) => {
    event?.preventDefault();
    const content = text.trim();
    if (!content) return;
    stopTyping();
    setText("");
    const sent = editing ? socket.edit(editing.id, { content }) : socket.send(conversationId, { content, ...(replyTo && { replyTo: replyTo.id }) });
    props.onDone();
    // Refused or lost: the text comes back to be sent again (the error says why).
    sent.catch(() => setText((now) => now || content));
    await props.act(sent);
  };
  return (
    <form class="composer" onSubmit={submit}>
      {(replyTo || editing) && (
        <p class="composing">
          {editing ? `Editing message #${editing.sequence}` : `Replying to #${replyTo!.sequence}: ${replyTo!.content.slice(0, 60)}`}{" "}
          <button type="button" class="link" onClick={() => (setText(""), props.onDone())}>
            {editing ? "Stop editing" : "Discard reply"}
          </button>
        </p>
      )}
      <label class="visually-hidden" for="composer">
        Message
      </label>
      <textarea
        id="composer"
        rows={2}
        value={text}
        placeholder="Write a message (Enter sends, Shift+Enter adds a line)"
        onInput={(e) => input(e.currentTarget.value)}
        onBlur={stopTyping}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) void submit(e);
          if (e.key === "Escape" && (replyTo || editing)) (setText(""), props.onDone());
        }}
      />
      <button type="submit" disabled={!text.trim()}>
        {editing ? "Save" : "Send"}
      </button>
    </form>
  );
}

const ACTION_LABEL: Record<RunAction, string> = { pause: "Pause", resume: "Resume", preempt: "Preempt", cancel: "Cancel" };
const ENDED = new Set(["completed", "failed", "cancelled"]);

function Runs({ runs, user, role, onAction }: { runs: Run[]; user: PrincipalInfo; role?: ConversationRole; onAction: (run: Run, action: RunAction) => void }) {
  const shown = [...runs.filter((r) => !ENDED.has(r.state)), ...runs.filter((r) => ENDED.has(r.state)).slice(0, 5)];
  return (
    <section class="runs card" aria-labelledby="runs-title">
      <h3 id="runs-title">Runs</h3>
      {shown.length === 0 ? (
        <p class="empty">No agent is answering.</p>
      ) : (
        <ul>
          {shown.map((run) => (
            <li key={run.id} class={`run ${run.state}`} aria-label={`Run ${run.id}`}>
              <div>
                <strong class="run-id">{run.id}</strong> <span class={`run-state ${run.state}`} data-run-state={run.state}>{run.state}</span>
              </div>
              <div class="meta">
                owner {nameOf(run.owner_id, user)} · priority {run.priority}
                {run.end_reason ? ` · ${run.end_reason}` : ""}
              </div>
              <div class="actions">
                {runActions(user, run, role).map((action) => (
                  <button type="button" class={action === "cancel" ? "danger" : undefined} onClick={() => onAction(run, action)}>
                    {ACTION_LABEL[action]}
                  </button>
                ))}
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Participants({ snapshot, user, role, act }: { snapshot: ConversationSnapshot; user: PrincipalInfo; role?: ConversationRole; act: (action: Promise<unknown>) => Promise<unknown> }) {
  const conversation = snapshot.conversation!;
  const [userId, setUserId] = useState("");
  const [userType, setUserType] = useState<ParticipantType>("user");
  const manages = role === "owner" || role === "admin";
  // The owner stays; only the owner removes an admin (docs/api.md, Participants).
  const mayRemove = (theirs: ConversationRole, id: string) => manages && id !== user.id && theirs !== "owner" && (theirs === "member" || role === "owner");
  const add = (event: Event) => {
    event.preventDefault();
    if (!userId.trim()) return;
    void act(client.addParticipant(conversation.id, { userId: userId.trim(), userType }).then(() => setUserId("")));
  };
  return (
    <section class="participants card" aria-labelledby="participants-title">
      <h3 id="participants-title">Participants</h3>
      <ul>
        {conversation.participants.map((p) => {
          const presence = snapshot.presence[p.user_id] ?? "offline";
          return (
            <li key={p.id}>
              <span class="who">
                <span class={`presence ${presence}`} aria-hidden="true" />
                {p.user_id === user.id ? "you" : p.user_id}
              </span>
              <span class="meta">
                {p.user_type} · {p.role} · {presence}
              </span>
              {mayRemove(p.role, p.user_id) && (
                <button type="button" class="link" aria-label={`Remove ${p.user_id}`} onClick={() => act(client.removeParticipant(conversation.id, p.user_id))}>
                  Remove
                </button>
              )}
            </li>
          );
        })}
      </ul>
      {manages && (
        <form class="add-participant" onSubmit={add}>
          <label>
            Participant id
            <input value={userId} onInput={(e) => setUserId(e.currentTarget.value)} />
          </label>
          <label>
            Participant type
            <select value={userType} onChange={(e) => setUserType(e.currentTarget.value as ParticipantType)}>
              {PARTICIPANT_TYPES.map((t) => (
                <option value={t}>{t}</option>
              ))}
            </select>
          </label>
          <button type="submit">Add participant</button>
        </form>
      )}
    </section>
  );
}

