/**
 * The statement behind every send (messages and control events), as fixed text with numbered parameters.
 *
 * One statement does it all: it bumps the conversation's counter, checks that the sender participates and
 * that the references name messages of the conversation, and inserts the message with the new sequence.
 * The counter's row lock orders concurrent senders, and because it is a single statement a failed insert
 * (a duplicate client id) rolls the counter back too: sequences stay 1, 2, 3 … with no gap.
 *
 * The text never changes, so PostgreSQL parses and plans it once per pooled connection (a named prepared
 * statement) and no query builder runs per send. The benchmark in bench/rest-send.ts runs this same text.
 */
import type { Principal } from "../../auth/principal";
import type { MessageRow } from "../../db/schema";
import type { Scope } from "../../core/scope";

export const SEND_STATEMENT = `
with next as (
  update conversations c
     set last_sequence = c.last_sequence + 1, last_message_at = now()
   where c.id = $1
     and exists (select 1 from participants p where p.conversation_id = c.id and p.user_id = $2)
     and ($3::uuid is null or exists (select 1 from messages r where r.id = $3::uuid and r.conversation_id = c.id))
     and ($4::uuid is null or exists (select 1 from messages r where r.id = $4::uuid and r.conversation_id = c.id))
  returning c.last_sequence, c.org_id
)
insert into messages (id, conversation_id, sender_id, sender_type, content, content_type, reply_to, org_id,
                      run_id, trace_id, sequence, priority, interruptible, preempted_by, metadata,
                      data_class, policy_ref)
select $5, $1, $2, $6, $7, $8, $3::uuid, next.org_id, $9, $10, next.last_sequence, $11, $12, $4::uuid, $13::jsonb, $14, $15
  from next
returning *`;

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
}

/** The parameters of SEND_STATEMENT, in order. */
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
  ];
}
