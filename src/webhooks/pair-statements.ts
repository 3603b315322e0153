/**
 * The statements behind delivery by (endpoint, conversation) pairs (./dispatcher.ts). A pair's events
 * are the conversation's message log past the pair's cursor (`webhook_cursors`), merged with the pair's
 * pending outbox rows (`webhook_deliveries`, ordered by `after_sequence`, then `position`).
 *
 * Which stored messages an endpoint hears (`WANTED_TYPES`), for a message `m` of conversation `c`:
 * - its events: `run.started` first when the message started its run, then its control event (a stored
 *   control message) or `message.created`; each kept if the endpoint's `events` filter takes it;
 * - written while the endpoint was enabled: in one of its `heard_periods`;
 * - for an agent's endpoint: not its own, and written while it participated (a participant now, that
 *   joined before it, or before it was last removed: the cursor's `member_until`).
 */
import { TEST_EVENT_TYPE } from "./event-types";

/**
 * An endpoint's `heard_periods` changed by its enabling (a period opens now) and its disabling (the open
 * period closes now), as SQL expressions for the assignment of an update of `webhook_endpoints`.
 */
export const OPEN_HEARD_PERIOD = "heard_periods + tstzmultirange(tstzrange(now(), null))";
export const CLOSE_HEARD_PERIOD = "heard_periods * tstzmultirange(tstzrange(null, now()))";

/** The conversation-less "pair" of an endpoint: its test events. */
export const NO_CONVERSATION = "00000000-0000-0000-0000-000000000000";

/**
 * Whether endpoint `e`, registered by a service acting for its principal, reaches a conversation of the
 * organisation `orgId` (an SQL expression): its `org_reach` allows it, or it has none.
 */
export const reaches = (orgId: string) => `(e.org_reach is null or ${orgId} is null or ${orgId} = any(e.org_reach))`;

/** Whether endpoint `e` hears the conversation `c` at all (its scope). */
const IN_SCOPE = `(e.scope = 'installation'
   or (e.scope = 'org' and c.org_id = e.org_id)
   or (e.scope = 'principal' and ${reaches("c.org_id")}
       and exists (select 1 from participants p where p.conversation_id = c.id and p.user_id = e.principal_id)))`;

/**
 * Where a new pair's cursor starts: after the last message of the conversation (its id: `conversation`)
 * written before the endpoint (its `receives_since`) listened.
 */
export const cursorStart = (conversation: string, receivesSince: string) => `coalesce((select m.sequence from messages m
                          where m.conversation_id = ${conversation} and m.created_at < ${receivesSince}
                          order by m.sequence desc limit 1), 0)`;

const START = cursorStart("c.id", "e.receives_since");

/** Whether endpoint `e` takes events of type `type` (its `events` filter). */
const takes = (type: string) => `(e.events is null or ${type} = any(e.events) or (${type} like 'stream.%' and 'stream.*' = any(e.events)))`;

/**
 * An endpoint's events narrowed ($1 the endpoint): its pending rows of types it no longer takes fail, and
 * say why, instead of being delivered after the change. Test events are always taken.
 */
export const FAIL_UNTAKEN_ROWS = `
update webhook_deliveries d
   set status = 'failed', lease_until = null, last_error = 'not delivered: the endpoint no longer takes this event type'
  from webhook_endpoints e
 where e.id = $1 and d.endpoint_id = e.id and d.status = 'pending' and d.event_type <> '${TEST_EVENT_TYPE}'
   and not ${takes("d.event_type")}`;

/** The main event of a stored message `m`: its control event, or `message.created`. */
const MAIN_TYPE = `(case when m.content_type = 'event' then coalesce(m.metadata->'control'->>'event', m.content) else 'message.created' end)`;

/** The events of message `m` that endpoint `e` takes, in delivery order (plain expressions: evaluated per message read). */
const WANTED_TYPES = `array_remove(array[
  case when m.run_id is not null and m.content_type <> 'event' and ${takes("'run.started'")}
        and exists (select 1 from runs r where r.conversation_id = m.conversation_id and r.id = m.run_id and r.started_at = m.created_at)
       then 'run.started' end,
  case when ${takes(MAIN_TYPE)} then ${MAIN_TYPE} end], null)`;

/** Whether endpoint `e` hears message `m` at all: written while it was enabled, and for an agent, not its own, while it participated. */
const HEARS = `e.heard_periods @> m.created_at
   and (e.scope <> 'principal' or (
         m.sender_id <> e.principal_id
         and (m.sequence <= w.member_until
              or exists (select 1 from participants p where p.conversation_id = m.conversation_id and p.user_id = e.principal_id and p.joined_at <= m.created_at))))`;

/**
 * An agent removed from a conversation ($1 the agent, $2 the conversation, $3 when it had joined) still
 * hears what was written while it participated, and nothing from before: its endpoints' cursors remember
 * the sequence of the removal, and go no further back than where it joined (made if missing).
 */
export const MEMBER_UNTIL = `
insert into webhook_cursors (endpoint_id, conversation_id, sequence, member_until)
select e.id, c.id, greatest(${START}, ${cursorStart("c.id", "$3::timestamptz")}), c.last_sequence
  from webhook_endpoints e join conversations c on c.id = $2
 where e.scope = 'principal' and e.principal_id = $1 and e.enabled and ${reaches("c.org_id")}
on conflict (endpoint_id, conversation_id) do update
  set member_until = excluded.member_until, sequence = greatest(webhook_cursors.sequence, excluded.sequence)`;

/**
 * The pairs of these conversations ($1: JSON array of ids) and enabled endpoints: cursors created where
 * missing, and every pair answered (its endpoint), so that the caller knows whom a conversation concerns.
 */
export const ENSURE_PAIRS = `
with wanted as (
  select e.id as endpoint_id, c.id as conversation_id, e.receives_since
    from webhook_endpoints e
    join conversations c on c.id in (select jsonb_array_elements_text($1::jsonb)::uuid)
   where e.enabled and ${IN_SCOPE}
),
created as (
  insert into webhook_cursors (endpoint_id, conversation_id, sequence)
  select w.endpoint_id, w.conversation_id, (select ${START} from webhook_endpoints e, conversations c where e.id = w.endpoint_id and c.id = w.conversation_id)
    from wanted w
   where not exists (select 1 from webhook_cursors k where k.endpoint_id = w.endpoint_id and k.conversation_id = w.conversation_id)
  on conflict do nothing
)
select endpoint_id, conversation_id from wanted`;

/**
 * Cursors for conversations written to lately ($1 seconds) that an enabled endpoint should hear and has
 * none for: what a process killed between a commit and its own hint left behind (at start, and now and
 * then on every instance).
 */
export const DISCOVER_PAIRS = `
insert into webhook_cursors (endpoint_id, conversation_id, sequence)
select e.id, c.id, ${START}
  from webhook_endpoints e
  join conversations c on c.last_message_at > now() - make_interval(secs => $1)
 where e.enabled and ${IN_SCOPE}
   and not exists (select 1 from webhook_cursors k where k.endpoint_id = e.id and k.conversation_id = c.id)
on conflict do nothing
returning endpoint_id`;

/**
 * The ids of the pairs' first pending row and what it waits for, as one lateral: due now, and after which
 * sequence of the log.
 */
const HEAD = `(select d.after_sequence, d.next_attempt_at <= now() as due
                 from webhook_deliveries d
                where d.status = 'pending' and d.endpoint_id = w.endpoint_id and d.conversation_id = w.conversation_id
                order by d.after_sequence, d.position limit 1)`;

/**
 * Leases pairs with something to deliver now and no lease held: those named ($1: JSON array of
 * {endpoint_id, conversation_id}), or any ($1 null: the sweep). At most $2, for $3 s, under token $4.
 * Something to deliver: a due first row, or messages past the cursor that no waiting row holds back.
 * The pairs that recorded progress longest ago go first. Answers each pair with its cursor.
 */
export const LEASE_PAIRS = `
with named as (
  select * from jsonb_to_recordset(coalesce($1::jsonb, '[]')) as v(endpoint_id uuid, conversation_id uuid)
),
work as (
  select w.endpoint_id, w.conversation_id
    from webhook_cursors w
    join webhook_endpoints e on e.id = w.endpoint_id and e.enabled
    left join conversations c on c.id = w.conversation_id
    left join lateral ${HEAD} h on true
   where ($1::jsonb is null or (w.endpoint_id, w.conversation_id) in (select endpoint_id, conversation_id from named))
     and (w.lease_until is null or w.lease_until < now())
     and (h.due or (c.last_sequence > w.sequence and (h.after_sequence is null or h.after_sequence > w.sequence)))
   order by w.updated_at
   limit $2
     for update of w skip locked
)
update webhook_cursors w
   set lease_until = now() + make_interval(secs => $3::double precision), lease_token = $4::uuid
  from work
 where w.endpoint_id = work.endpoint_id and w.conversation_id = work.conversation_id
returning w.endpoint_id, w.conversation_id, w.sequence`;

/**
 * The next events of leased pairs ($1: JSON array of {endpoint_id, conversation_id, sequence}), at most
 * $2 messages and $2 rows each: the pair's pending rows in order, and its messages past the cursor (the
 * session's, or the stored one if a removal or a deletion moved it further) that
 * the endpoint hears, with the conversation's last sequence as this read saw it (what the cursor may
 * skip to when fewer than $2 messages came back).
 */
export const READ_ROWS = `
select v.endpoint_id as pair_endpoint, v.conversation_id as pair_conversation, d.id, d.event_type, d.event_key, d.message_id,
       d.after_sequence, d.payload, d.attempts, d.occurred_at, d.next_attempt_at <= now() as due
  from jsonb_to_recordset($1::jsonb) as v(endpoint_id uuid, conversation_id uuid, sequence int)
  cross join lateral (
    select * from webhook_deliveries d
     where d.status = 'pending' and d.endpoint_id = v.endpoint_id and d.conversation_id = v.conversation_id
     order by d.after_sequence, d.position limit $2) d`;

export const READ_LOG = `
select v.endpoint_id as pair_endpoint, v.conversation_id as pair_conversation, c.last_sequence as log_end, m.*
  from jsonb_to_recordset($1::jsonb) as v(endpoint_id uuid, conversation_id uuid, sequence int)
  join webhook_endpoints e on e.id = v.endpoint_id
  join webhook_cursors w on w.endpoint_id = v.endpoint_id and w.conversation_id = v.conversation_id
  left join conversations c on c.id = v.conversation_id
  left join lateral (
    select * from (
      select m.*, ${WANTED_TYPES} as types
        from messages m
       where m.conversation_id = v.conversation_id and m.sequence > greatest(v.sequence, w.sequence) and m.sequence <= c.last_sequence
         and ${HEARS}
       order by m.sequence) m
     where cardinality(m.types) > 0
     order by m.sequence
     limit $2) m on true`;

/**
 * What sessions did ($1: JSON array of {endpoint_id, conversation_id, token, sequence, release, succeeded}):
 * cursors moved on, leases extended by $3 s or released; rows delivered ($2: JSON array of {id,
 * endpoint_id, conversation_id, token, status, attempts}); an endpoint that delivered something counts no
 * failures in a row. Only under the lease each was read under; answers the pairs still held.
 */
export const RECORD = `
with v as (
  select * from jsonb_to_recordset($1::jsonb) as v(endpoint_id uuid, conversation_id uuid, token uuid, sequence int, release boolean, succeeded boolean)
),
moved as (
  update webhook_cursors w
     set sequence = greatest(w.sequence, v.sequence),
         lease_until = case when v.release then null else now() + make_interval(secs => $3::double precision) end,
         lease_token = case when v.release then null else w.lease_token end,
         updated_at = now()
    from v
   where w.endpoint_id = v.endpoint_id and w.conversation_id = v.conversation_id and w.lease_token = v.token
  returning w.endpoint_id, w.conversation_id, v.release, v.succeeded
),
done as (
  update webhook_deliveries d
     set status = 'delivered', delivered_at = now(), lease_until = null, last_status = x.status, last_error = null, attempts = x.attempts
    from jsonb_to_recordset($2::jsonb) as x(id uuid, endpoint_id uuid, conversation_id uuid, token uuid, status int, attempts int)
   where d.id = x.id and d.status = 'pending'
     and exists (select 1 from webhook_cursors w where w.endpoint_id = x.endpoint_id and w.conversation_id = x.conversation_id and w.lease_token = x.token)
  returning d.endpoint_id
),
reset as (
  update webhook_endpoints set consecutive_failures = 0
   where id in (select endpoint_id from done union select endpoint_id from moved where succeeded) and consecutive_failures <> 0
)
select endpoint_id, conversation_id from moved where not release`;

/**
 * A message's event that did not deliver at its first attempt becomes a row, with the events of the same
 * message that were still to go (attempts 0) behind it, and the cursor moves past the message: the row
 * holds the pair until it is delivered or fails for good. $1 endpoint, $2 conversation, $3 token, $4
 * the message's sequence, $5 a JSON array of rows {id, event_type, event_key, message_id, occurred_at,
 * status, attempts, delay, last_status, last_error}. Answers whether the lease still held.
 */
export const LOG_EVENT_FAILED = `
with held as (
  select 1 from webhook_cursors w where w.endpoint_id = $1 and w.conversation_id = $2 and w.lease_token = $3::uuid for update
),
added as (
  insert into webhook_deliveries (id, endpoint_id, conversation_id, event_type, event_key, message_id, sequence, after_sequence,
                                  occurred_at, status, attempts, next_attempt_at, last_status, last_error)
  select x.id, $1, $2, x.event_type, x.event_key, x.message_id, $4::int, $4::int - 1, x.occurred_at, x.status, x.attempts,
         now() + make_interval(secs => x.delay), x.last_status, x.last_error
    from jsonb_to_recordset($5::jsonb) as x(n int, id uuid, event_type text, event_key text, message_id uuid, occurred_at timestamptz,
                                            status text, attempts int, delay double precision, last_status int, last_error text)
   where exists (select 1 from held)
   order by x.n
  on conflict do nothing
),
moved as (
  update webhook_cursors w set sequence = greatest(w.sequence, $4::int), updated_at = now()
   where w.endpoint_id = $1 and w.conversation_id = $2 and exists (select 1 from held)
  returning 1
)
select exists (select 1 from moved) as held`;

/**
 * A row's attempt that did not deliver ($1 the row, $7 its attempts), under the pair's lease ($8 endpoint,
 * $9 conversation, $2 token). Answers whether the lease held; a row no longer pending (failed meanwhile by
 * its endpoint's narrowed events, or retried by hand) is left as it is.
 */
export const ROW_FAILED = `
with held as (
  select 1 from webhook_cursors w where w.endpoint_id = $8 and w.conversation_id = $9 and w.lease_token = $2::uuid
),
updated as (
  update webhook_deliveries d
     set status = $3, next_attempt_at = now() + make_interval(secs => $4::double precision), lease_until = null,
         last_status = $5, last_error = $6, attempts = $7
   where d.id = $1 and d.status = 'pending' and exists (select 1 from held)
)
select exists (select 1 from held) as held`;

export const COUNT_FAILURE = `
update webhook_endpoints
   set consecutive_failures = consecutive_failures + 1,
       enabled = enabled and consecutive_failures + 1 < $2,
       disabled_at = case when enabled and consecutive_failures + 1 >= $2 then now() else disabled_at end,
       heard_periods = case when enabled and consecutive_failures + 1 >= $2 then ${CLOSE_HEARD_PERIOD} else heard_periods end,
       disabled_reason = case when enabled and consecutive_failures + 1 >= $2 then $3 else disabled_reason end,
       updated_at = case when enabled and consecutive_failures + 1 >= $2 then now() else updated_at end
 where id = $1
returning enabled`;

export const DISABLE = `update webhook_endpoints set enabled = false, disabled_at = now(), heard_periods = ${CLOSE_HEARD_PERIOD}, disabled_reason = $2, updated_at = now() where id = $1 and enabled`;

/** Leases this instance still holds, given back at shutdown ($1: token). */
export const RELEASE_ALL = `update webhook_cursors set lease_until = null, lease_token = null where lease_token = $1::uuid`;

export const PRUNE = `
delete from webhook_deliveries
 where id in (select id from webhook_deliveries
               where status <> 'pending' and created_at < now() - make_interval(days => $1)
               limit 10000)`;

/** Cursors of conversations that no longer exist and with nothing pending. */
export const PRUNE_CURSORS = `
delete from webhook_cursors w
 where w.conversation_id <> '${NO_CONVERSATION}'
   and not exists (select 1 from conversations c where c.id = w.conversation_id)
   and not exists (select 1 from webhook_deliveries d where d.status = 'pending' and d.endpoint_id = w.endpoint_id and d.conversation_id = w.conversation_id)`;

/** The pairs of a conversation and their cursors ($1), for endpoints still enabled. */
export const PAIRS_OF_CONVERSATION = `
select w.endpoint_id, w.conversation_id, w.sequence
  from webhook_cursors w join webhook_endpoints e on e.id = w.endpoint_id and e.enabled
 where w.conversation_id = $1`;

/**
 * Messages' events made rows with their payload ($1: JSON array of {endpoint_id, conversation_id, id,
 * event_type, event_key, message_id, sequence, occurred_at, payload}, in order), and the cursors of the
 * conversation ($2) moved to its end: before a conversation and its log are deleted.
 */
export const LOG_TO_ROWS = `
with added as (
  insert into webhook_deliveries (id, endpoint_id, conversation_id, event_type, event_key, message_id, sequence, after_sequence, occurred_at, payload)
  select x.id, x.endpoint_id, x.conversation_id, x.event_type, x.event_key, x.message_id, x.sequence, x.sequence - 1, x.occurred_at, x.payload
    from jsonb_to_recordset($1::jsonb) as x(n int, endpoint_id uuid, conversation_id uuid, id uuid, event_type text, event_key text,
                                            message_id uuid, sequence int, occurred_at timestamptz, payload jsonb)
   order by x.n
  on conflict do nothing
)
update webhook_cursors w set sequence = greatest(w.sequence, c.last_sequence), updated_at = now()
  from conversations c
 where c.id = $2 and w.conversation_id = $2`;

/**
 * A conversation's pending rows that take their payload from the log (a message's event that failed at
 * first), with their message ($1 the conversation): before the conversation and its log are deleted.
 */
export const ROWS_FROM_LOG = `
select d.id as delivery_id, d.event_type as delivery_type, m.*
  from webhook_deliveries d join messages m on m.id = d.message_id
 where d.conversation_id = $1 and d.status = 'pending' and d.payload is null`;

/** Rows given the payload they took from the log ($1: JSON array of {id, payload}). */
export const KEEP_PAYLOADS = `
update webhook_deliveries d set payload = x.payload
  from jsonb_to_recordset($1::jsonb) as x(id uuid, payload jsonb)
 where d.id = x.id`;
