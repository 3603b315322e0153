/**
 * The console's shell: the session (sign in, who you are, sign out), the connection and its state, and
 * the views by the page's hash: #/ (conversations), #/c/<id> (one conversation), #/admin (system admins).
 */
import { useEffect, useMemo, useState } from "preact/hooks";
import type { PrincipalInfo, RealtimeClient } from "../client/index.ts";
import { AdminView } from "./admin.tsx";
import { client, errorText, isSystemAdmin, openRealtime, signIn } from "./api.ts";
import { ConversationList } from "./conversation-list.tsx";
import { ConversationView } from "./conversation-view.tsx";

export function App() {
  // undefined while the session is being asked for; null when signed out.
  const [user, setUser] = useState<PrincipalInfo | null | undefined>(undefined);
  const [error, setError] = useState<string>();
  useEffect(() => {
    client.session().then(
      (session) => setUser(session.authenticated ? session.user : null),
      (failure) => (setError(errorText(failure)), setUser(null)),
    );
  }, []);
  // The first view that takes input is on the page: the load is over (the browser tests read this mark).
  const known = user !== undefined;
  useEffect(() => {
    if (known && performance.getEntriesByName("console:interactive").length === 0) performance.mark("console:interactive");
  }, [known]);
  if (user === undefined) return <p class="boot">Loading the console…</p>;
  if (!user) return <SignIn onSignedIn={setUser} notice={error} />;
  return <Console user={user} onSignedOut={(why) => (setError(why), setUser(null))} />;
}

function SignIn({ onSignedIn, notice }: { onSignedIn: (user: PrincipalInfo) => void; notice?: string }) {
  const [error, setError] = useState(notice);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    setBusy(true);
    try {
      onSignedIn(await signIn(String(form.get("email")), String(form.get("password"))));
    } catch (failure) {
      setError(errorText(failure));
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <form onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">symbia-messaging</h1>
        <p>Sign in to the console.</p>
        <label>
          Email
          <input name="email" type="email" autocomplete="username" required autofocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        {error && <p role="alert" class="error">{error}</p>}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}

type Route = { view: "conversations" } | { view: "conversation"; id: string } | { view: "admin" };

function routeOf(hash: string): Route {
  const conversation = /^#\/c\/([^/]+)$/.exec(hash);
  if (conversation) return { view: "conversation", id: decodeURIComponent(conversation[1]) };
  if (hash === "#/admin") return { view: "admin" };
  return { view: "conversations" };
}

function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const update = () => setHash(location.hash);
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return useMemo(() => routeOf(hash), [hash]);
}

function Console({ user, onSignedOut }: { user: PrincipalInfo; onSignedOut: (why?: string) => void }) {
  const socket = useMemo(openRealtime, [user.id]);
  const route = useRoute();
  useEffect(() => {
    // 4401: the session ended (logged out elsewhere, expired, revoked); the SDK does not reconnect then.
    const off = socket.on("close", ({ code, reconnecting }) => !reconnecting && code === 4401 && onSignedOut("Your session has ended; sign in again."));
    socket.connect().catch(() => {}); // the connection state says what happened
    return () => (off(), socket.close());
  }, [socket]);
  const signOut = async () => {
    socket.close();
    await client.logout().catch(() => {});
    onSignedOut();
  };
  const selected = route.view === "conversation" ? route.id : undefined;
  return (
    <div class={`shell ${route.view === "conversations" ? "at-list" : "at-detail"}`}>
      <header class="top">
        <a class="brand" href="#/">
          symbia-messaging
        </a>
        <nav aria-label="Views">
          <a href="#/" aria-current={route.view !== "admin" ? "page" : undefined}>
            Conversations
          </a>
          {isSystemAdmin(user) && (
            <a href="#/admin" aria-current={route.view === "admin" ? "page" : undefined}>
              Admin
            </a>
          )}
        </nav>
        <ConnectionState socket={socket} />
        <div class="session">
          <span title={user.id}>
            Signed in as <strong>{user.name ?? user.email ?? user.id}</strong>
            {user.isSuperAdmin ? " (super admin)" : ""}
          </span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <div class="panes">
        <aside class="list-pane">
          <ConversationList socket={socket} user={user} selectedId={selected} />
        </aside>
        <main class="detail-pane">
          {route.view === "conversation" && <ConversationView key={route.id} id={route.id} socket={socket} user={user} />}
          {route.view === "admin" && (isSystemAdmin(user) ? <AdminView /> : <p role="alert">The admin views are for system admins.</p>)}
          {route.view === "conversations" && <p class="empty">Choose a conversation, or start a new one.</p>}
        </main>
      </div>
    </div>
  );
}

type Connection = { state: "connecting" | "live" | "reconnecting" | "offline"; detail?: string };

/** What the socket is doing, in words: live, reconnecting (and which attempt), resumed with what was missed. */
function ConnectionState({ socket }: { socket: RealtimeClient }) {
  const [connection, setConnection] = useState<Connection>({ state: socket.connected ? "live" : "connecting" });
  useEffect(() => {
    let replayed = 0;
    const offs = [
      socket.on("open", () => ((replayed = 0), setConnection({ state: "live" }))),
      socket.on("close", ({ reconnecting }) => setConnection({ state: reconnecting ? "reconnecting" : "offline" })),
      socket.on("reconnecting", ({ attempt }) => setConnection({ state: "reconnecting", detail: `attempt ${attempt}` })),
      socket.on("resumed", (joined) => {
        replayed += joined.replayed;
        const missed = replayed === 0 ? "nothing missed" : `${replayed} missed ${replayed === 1 ? "message" : "messages"} caught up`;
        setConnection({ state: "live", detail: `resumed, ${missed}` });
      }),
    ];
    return () => offs.forEach((off) => off());
  }, [socket]);
  const words = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" }[connection.state];
  return (
    <span class={`connection ${connection.state}`} role="status" aria-label="Connection" data-state={connection.state}>
      {words}
      {connection.detail && <small> ({connection.detail})</small>}
    </span>
  );
}
