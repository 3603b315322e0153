/**
 * For system admins: the admin statistics and every conversation in reach (filtered by organisation),
 * and the webhook endpoints with their recent deliveries.
 */
import { useEffect, useState } from "preact/hooks";
import type { AdminConversationList, AdminStats, Webhook, WebhookDelivery } from "../client/index.ts";
import { client, errorText, timeOf } from "./api.ts";

const PAGE = 25;

export function AdminView() {
  const [orgId, setOrgId] = useState<string>();
  const [offset, setOffset] = useState(0);
  const [stats, setStats] = useState<AdminStats>();
  const [page, setPage] = useState<AdminConversationList>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    Promise.all([client.adminStats({ orgId }), client.adminListConversations({ orgId, limit: PAGE, offset })]).then(
      ([s, p]) => (setStats(s), setPage(p), setError(undefined)),
      (failure) => setError(errorText(failure)),
    );
  }, [orgId, offset]);
  const filter = (event: Event) => {
    event.preventDefault();
    const value = String(new FormData(event.currentTarget as HTMLFormElement).get("org") ?? "").trim();
    setOrgId(value || undefined);
    setOffset(0);
  };
  return (
    <div class="admin">
      <h2>Admin</h2>
      <form class="org-filter" onSubmit={filter}>
        <label>
          Organisation
          <input name="org" placeholder="all in reach" defaultValue={orgId ?? ""} />
        </label>
        <button type="submit">Filter</button>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {stats && (
        <dl class="stats" aria-label="Statistics">
          <Stat label="Conversations" value={stats.totalConversations} />
          <Stat label="Messages" value={stats.totalMessages} />
          <Stat label="Participants" value={stats.uniqueParticipants} />
          <Stat label="Active in 24 h" value={stats.activeConversations24h} />
        </dl>
      )}
      {page && (
        <section aria-labelledby="all-conversations">
          <h3 id="all-conversations">
            All conversations <small>({page.total})</small>
          </h3>
          <div class="table-scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Type</th>
                  <th scope="col">Organisation</th>
                  <th scope="col">Created by</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((c) => (
                  <tr key={c.id}>
                    <td>
                      <a href={`#/c/${c.id}`}>{c.name ?? c.id}</a>
                    </td>
                    <td>{c.type}</td>
                    <td>{c.org_id ?? "–"}</td>
                    <td>{c.created_by}</td>
                    <td>{new Date(c.updated_at).toLocaleString()}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="pager">
            <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
              Previous page
            </button>
            <button type="button" disabled={offset + PAGE >= page.total} onClick={() => setOffset(offset + PAGE)}>
              Next page
            </button>
          </div>
        </section>
      )}
      <Webhooks />
    </div>
  );
}

function Stat({ label, value }: { label: string; value: number }) {
  return (
    <div class="stat card">
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

function Webhooks() {
  const [webhooks, setWebhooks] = useState<Webhook[]>();
  const [open, setOpen] = useState<string>();
  const [deliveries, setDeliveries] = useState<WebhookDelivery[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    client.listWebhooks().then(setWebhooks, (failure) => setError(errorText(failure)));
  }, []);
  useEffect(() => {
    setDeliveries(undefined);
    if (open) client.listWebhookDeliveries(open, { limit: 20 }).then(setDeliveries, (failure) => setError(errorText(failure)));
  }, [open]);
  return (
    <section aria-labelledby="webhooks-title">
      <h3 id="webhooks-title">Webhook endpoints</h3>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {webhooks?.length === 0 && <p class="empty">No webhook endpoints.</p>}
      <ul class="webhooks">
        {webhooks?.map((w) => (
          <li key={w.id} class="card">
            <div>
              <strong>{w.url}</strong> <span class="meta">{w.enabled ? "enabled" : `disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ""}`}</span>
            </div>
            <div class="meta">
              {w.scope}
              {w.org_id ? ` ${w.org_id}` : ""} · {w.events?.join(", ") ?? "every event"} · {w.consecutive_failures} failures in a row
            </div>
            <button type="button" class="link" aria-expanded={open === w.id} onClick={() => setOpen(open === w.id ? undefined : w.id)}>
              Recent deliveries
            </button>
            {open === w.id &&
              (deliveries === undefined ? (
                <p class="empty">Loading…</p>
              ) : deliveries.length === 0 ? (
                <p class="empty">Nothing in the delivery log (a message delivered at its first attempt leaves no entry).</p>
              ) : (
                <ul class="deliveries">
                  {deliveries.map((d) => (
                    <li key={d.id}>
                      <span class={`delivery ${d.status}`}>{d.status}</span> {d.type} · {timeOf(d.created_at)} · {d.attempts} attempts
                      {d.last_status ? ` · HTTP ${d.last_status}` : ""}
                      {d.last_error ? ` · ${d.last_error}` : ""}
                    </li>
                  ))}
                </ul>
              ))}
          </li>
        ))}
      </ul>
    </section>
  );
}
