/**
 * The statement behind every send (messages and control events), as fixed text with numbered parameters.
 *
 * One statement does it all: it bumps the conversation's counter, checks that the sender participates (and,
 * when a service acts for the sender, that the conversation is of an organisation the acting reaches) and
 * that the references name messages of the conversation, and inserts the message with the new sequence.
 * A message with a `runId` is let in only while that run is active and the sender owns it (the run's row
 * is share-locked, so a concurrent transition waits for the send or the send sees the new state); a run
 * id nobody started starts a run owned by the sender. Every send also tells whether it outranks an active,
 * interruptible run of someone else (automatic preemption), through an index of active runs only.
 * The counter's row lock orders concurrent senders. A client id already stored inserts nothing and bumps
 * nothing (the statement answers no row, as for any refusal), so that a batch of sends in one transaction
 * (src/db/statement-batcher.ts) is not aborted by one replay; and because it is a single statement an
 * insert that still fails (the same id committed by someone else meanwhile) rolls the counter back too:
 * sequences stay 1, 2, 3 … with no gap.
 *
 * The text never changes, so PostgreSQL parses and plans it once per pooled connection (a named prepared
 * statement) and no query builder runs per send. The benchmark in bench/rest-send.ts runs this same text.
 */
import type { Principal } from "../../auth/principal";
import type { MessageRow } from "../../db/schema";
import type { Scope } from "../../core/scope";
import type { Combiner } from "../../db/statement-batcher";

export const SEND_STATEMENT = `
with next as (
  update conversations c
     set last_sequence = c.last_sequence + 1, last_message_at = now()
   where c.id = $1
     and not exists (select 1 from messages m where m.id = $5)
     and exists (select 1 from participants p where p.conversation_id = c.id and p.user_id = $2)
     and ($17::text[] is null or c.org_id is null or c.org_id = any($17::text[]))
     and ($3::uuid is null or exists (select 1 from messages r where r.id = $3::uuid and r.conversation_id = c.id))
     and ($4::uuid is null or exists (select 1 from messages r where r.id = $4::uuid and r.conversation_id = c.id))
  returning c.last_sequence, c.org_id, (c.metadata->>'autoPreempt') is distinct from 'false' as auto_preempt
),
inserted as (
  insert into messages (id, conversation_id, sender_id, sender_type, content, content_type, reply_to, org_id,
                        run_id, trace_id, sequence, priority, interruptible, preempted_by, metadata,
                        data_class, policy_ref, stream_state)
  select $5, $1, $2, $6, $7, $8, $3::uuid, next.org_id, $9::text, $10, next.last_sequence, $11, $12, $4::uuid, $13::jsonb, $14, $15, $16::text
    from next
  returning *
)
select inserted.*,
       false as run_started,
       (select auto_preempt from next) and exists (
         select 1 from runs r
          where r.conversation_id = $1 and r.state = 'active' and r.interruptible and r.owner_id <> $2
            and array_position(array['low','normal','high','critical'], r.priority) < array_position(array['low','normal','high','critical'], $11::text)
       ) as preempts_runs
  from inserted`;

/**
 * A message that names a run: the same, and the run's state checked under a share lock, or the run
 * started. Kept apart so that the far more common send without a run pays for none of it (a
 * data-modifying CTE is set up on every execution, whether it inserts or not).
 */


export const SEND_INTO_RUN_STATEMENT = `
with run as (
  select r.state, r.owner_id
    from runs r
   where $9::text is not null and r.conversation_id = $1 and r.id = $9
     for share
),
next as (
  update conversations c
     set last_sequence = c.last_sequence + 1, last_message_at = now()
   where c.id = $1
     and not exists (select 1 from messages m where m.id = $5)
     and exists (select 1 from participants p where p.conversation_id = c.id and p.user_id = $2)
     and ($17::text[] is null or c.org_id is null or c.org_id = any($17::text[]))
     and ($3::uuid is null or exists (select 1 from messages r where r.id = $3::uuid and r.conversation_id = c.id))
     and ($4::uuid is null or exists (select 1 from messages r where r.id = $4::uuid and r.conversation_id = c.id))
     and ($9::text is null or not exists (select 1 from run) or exists (select 1 from run where state = 'active' and owner_id = $2))
  returning c.last_sequence, c.org_id, (c.metadata->>'autoPreempt') is distinct from 'false' as auto_preempt
),
started as (
  insert into runs (conversation_id, id, owner_id, owner_type, state, priority, interruptible)
  select $1, $9, $2, $6, 'active', $11, $12
   where $9::text is not null and exists (select 1 from next) and not exists (select 1 from run)
  on conflict do nothing
  returning id
),
inserted as (
  insert into messages (id, conversation_id, sender_id, sender_type, content, content_type, reply_to, org_id,
                        run_id, trace_id, sequence, priority, interruptible, preempted_by, metadata,
                        data_class, policy_ref, stream_state)
  select $5, $1, $2, $6, $7, $8, $3::uuid, next.org_id, $9, $10, next.last_sequence, $11, $12, $4::uuid, $13::jsonb, $14, $15, $16::text
    from next
  returning *
)
select inserted.*,
       exists (select 1 from started) as run_started,
       (select auto_preempt from next) and exists (
         select 1 from runs r
          where r.conversation_id = $1 and r.state = 'active' and r.interruptible and r.owner_id <> $2
            and array_position(array['low','normal','high','critical'], r.priority) < array_position(array['low','normal','high','critical'], $11::text)
       ) as preempts_runs
  from inserted`;

/**
 * Many plain sends (no reply, no preemption, no run) as one statement, with the same effect as
 * SEND_STATEMENT run once for each, in their order: each is refused alone by the same rules (not a
 * participant, an id already stored), each conversation's counter goes up by the number it accepted, and
 * its messages take the sequences in the order of the input. The counters are locked in conversation
 * order first, as separate statements would lock them (src/db/statement-batcher.ts), so that two such
 * statements never wait for each other in a circle. An id twice in one input would fail the insert:
 * sendsCombiner never puts one there.
 */
export const SEND_MANY_STATEMENT = `
with input as (
  select *
    from json_to_recordset($1::json) as i(ord int, conversation_id uuid, sender_id text, id uuid, sender_type text, content text,
                                          content_type text, trace_id text, priority text, interruptible boolean, metadata jsonb,
                                          data_class text, policy_ref text, stream_state text)
),
accepted as (
  select i.*, row_number() over (partition by i.conversation_id order by i.ord) as rank
    from input i
   where exists (select 1 from participants p where p.conversation_id = i.conversation_id and p.user_id = i.sender_id)
     and not exists (select 1 from messages m where m.id = i.id)
),
counts as (
  select conversation_id, count(*)::int as n from accepted group by conversation_id
),
locked as (
  select c.id from conversations c where c.id in (select conversation_id from counts) order by c.id for no key update
),
next as (
  update conversations c
     set last_sequence = c.last_sequence + counts.n, last_message_at = now()
    from counts, locked
   where c.id = counts.conversation_id and locked.id = c.id
  returning c.id, c.last_sequence - counts.n as base, c.org_id, (c.metadata->>'autoPreempt') is distinct from 'false' as auto_preempt
),
inserted as (
  insert into messages (id, conversation_id, sender_id, sender_type, content, content_type, reply_to, org_id,
                        run_id, trace_id, sequence, priority, interruptible, preempted_by, metadata,
                        data_class, policy_ref, stream_state)
  select a.id, a.conversation_id, a.sender_id, a.sender_type, a.content, a.content_type, null, next.org_id, null, a.trace_id,
         next.base + a.rank, a.priority, a.interruptible, null, a.metadata, a.data_class, a.policy_ref, a.stream_state
    from accepted a join next on next.id = a.conversation_id
  returning *
)
select inserted.*,
       false as run_started,
       next.auto_preempt and exists (
         select 1 from runs r
          where r.conversation_id = inserted.conversation_id and r.state = 'active' and r.interruptible and r.owner_id <> inserted.sender_id
            and array_position(array['low','normal','high','critical'], r.priority) < array_position(array['low','normal','high','critical'], inserted.priority)
       ) as preempts_runs
  from inserted join next on next.id = inserted.conversation_id`;

/**
 * A send SEND_MANY_STATEMENT can take: no reply, no preemption, no run, nobody acting for the sender
 * (their checks need one statement each).
 */
export function isPlainSend(row: Pick<SendRow, "replyTo" | "preemptedBy" | "runId" | "orgReach">): boolean {
  return row.replyTo === null && row.preemptedBy === null && row.runId === null && row.orgReach === null;
}

/** Plain sends that follow one another in a batch, written as one SEND_MANY_STATEMENT. */
export const sendsCombiner: Combiner = {
  accepts: (combined, next) => !combined.some((s) => s.params[ID_PARAMETER] === next.params[ID_PARAMETER]),
  combine: (statements) => ({
    text: SEND_MANY_STATEMENT,
    params: [
      "[" +
        statements
          .map(({ params: p }, ord) => {
            const fields = JSON.stringify({
              ord,
              conversation_id: p[0],
              sender_id: p[1],
              id: p[4],
              sender_type: p[5],
              content: p[6],
              content_type: p[7],
              trace_id: p[9],
              priority: p[10],
              interruptible: p[11],
              data_class: p[13],
              policy_ref: p[14],
              stream_state: p[15],
            });
            // The metadata is serialised already: spliced in as it is.
            return `${fields.slice(0, -1)},"metadata":${p[12] as string}}`;
          })
          .join(",") +
        "]",
    ],
  }),
  split: (rows, statements) => {
    const byId = new Map((rows as { id: string }[]).map((row) => [row.id, row]));
    return statements.map(({ params }) => {
      const row = byId.get(params[ID_PARAMETER] as string);
      return row ? [row] : [];
    });
  },
};

/** Where sendParameters puts the message id ($5). */
const ID_PARAMETER = 4;

/**
 * First in a batch of sends that name runs: the share locks of those runs, in (conversation, run) order,
 * before any conversation's counter is locked. A send alone takes its run's lock before the counter, and
 * so do run transitions (the run, then the counter); a batch that locked one conversation's counter and
 * then waited for a run of another would turn the order around and could deadlock with a transition.
 */
export const LOCK_RUNS_STATEMENT = `
select 1 from runs r
 where (r.conversation_id, r.id) in (select * from unnest($1::uuid[], $2::text[]))
 order by r.conversation_id, r.id
   for share`;

/** LOCK_RUNS_STATEMENT for a batch of send statements, or undefined when none names a run. */
export function lockRunsOf(statements: readonly { params: unknown[] }[]): { text: string; params: unknown[] } | undefined {
  const conversations: string[] = [];
  const runIds: string[] = [];
  for (const { params } of statements) {
    const runId = params[RUN_ID_PARAMETER];
    if (typeof runId !== "string") continue;
    conversations.push(params[0] as string);
    runIds.push(runId);
  }
  return runIds.length > 0 ? { text: LOCK_RUNS_STATEMENT, params: [conversations, runIds] } : undefined;
}

/** Where sendParameters puts the run id ($9). */
const RUN_ID_PARAMETER = 8;

/** What the statement answers besides the message row. */
export interface SendOutcome {
  /** The message named a run nobody had started: it started now, owned by the sender. */
  run_started: boolean;
  /** An active, interruptible run of someone else has a lower priority than this message: it is to be preempted. */
  preempts_runs: boolean;
}

/** Everything a new message row needs besides its sequence and org (which the statement assigns). */
export interface SendRow {
  id: string;
  conversationId: string;
  sender: Pick<Principal, "id" | "type">;
  content: string;
  contentType: string;
  replyTo: string | null;
  preemptedBy: string | null;
  runId: string | null;
  traceId: string | null;
  priority: MessageRow["priority"];
  interruptible: boolean;
  /** Already serialised: the statement casts it to jsonb. */
  metadataJson: string;
  scope: Pick<Scope, "dataClass" | "policyRef">;
  /** "streaming" for a message whose content follows in appends (docs/streaming.md), else null. */
  streamState: "streaming" | null;
  /**
   * When a service acts for the sender: the organisations whose conversations it may write in (those of
   * no organisation aside). Null when nobody acts.
   */
  orgReach: string[] | null;
}

/** The statement for a send: into a run, or not. Both take the parameters of sendParameters. */
export function sendStatementFor(runId: string | null): string {
  return runId === null ? SEND_STATEMENT : SEND_INTO_RUN_STATEMENT;
}

/** The parameters of SEND_STATEMENT and SEND_INTO_RUN_STATEMENT, in order. */
export function sendParameters(row: SendRow): unknown[] {
  return [
    row.conversationId,
    row.sender.id,
    row.replyTo,
    row.preemptedBy,
    row.id,
    row.sender.type,
    row.content,
    row.contentType,
    row.runId,
    row.traceId,
    row.priority,
    row.interruptible,
    row.metadataJson,
    row.scope.dataClass ?? null,
    row.scope.policyRef ?? null,
    row.streamState,
    row.orgReach,
  ];
}
