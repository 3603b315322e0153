/**
 * A stand-in for the Symbia Identity service, for the remote identity tests: tokens and API keys are
 * registered by the test, every call is counted, and the service can be made to fail or to hang.
 */
export interface FakeIdentity {
  url: string;
  /** Token -> introspection answer (active ones). Unknown tokens answer {active: false}. */
  tokens: Map<string, Record<string, unknown>>;
  /** API key -> verification answer (valid ones). Unknown keys answer {valid: false}. */
  apiKeys: Map<string, Record<string, unknown>>;
  /** Calls per path. */
  calls: Map<string, number>;
  /** The last request headers seen per path. */
  lastHeaders: Map<string, Headers>;
  /** "ok", answer 503 to everything, or hang for `hangMs`. */
  mode: "ok" | "failing" | "hanging";
  hangMs: number;
  count(path: string): number;
  stop(): void;
}

export const FAKE_PASSWORD = "remote-password";

export function startFakeIdentity(): FakeIdentity {
  const fake: FakeIdentity = {
    url: "",
    tokens: new Map(),
    apiKeys: new Map(),
    calls: new Map(),
    lastHeaders: new Map(),
    mode: "ok",
    hangMs: 2000,
    count: (path) => fake.calls.get(path) ?? 0,
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const path = new URL(request.url).pathname;
      fake.calls.set(path, fake.count(path) + 1);
      fake.lastHeaders.set(path, request.headers);
      if (fake.mode === "failing") return Response.json({ error: "down for maintenance" }, { status: 503 });
      if (fake.mode === "hanging") await Bun.sleep(fake.hangMs);
      const body = (await request.json().catch(() => ({}))) as Record<string, any>;
      switch (path) {
        case "/api/auth/login": {
          if (body.password !== FAKE_PASSWORD) {
            return Response.json({ error: "Wrong email or password", code: "bad_login" }, { status: 401 });
          }
          const headers = new Headers();
          headers.append("set-cookie", "token=remote-session-token; Path=/; HttpOnly; SameSite=Lax");
          headers.append("set-cookie", "identity_hint=1; Path=/");
          return Response.json({ token: "remote-session-token", user: { id: "u-remote", email: body.email } }, { headers });
        }
        case "/api/auth/logout": {
          const headers = new Headers({ "set-cookie": "token=; Path=/; Max-Age=0" });
          return Response.json({ ok: true, by: "identity" }, { headers });
        }
        case "/api/auth/introspect":
          return Response.json(fake.tokens.get(body.token) ?? { active: false });
        case "/api/auth/verify-api-key":
          return Response.json(fake.apiKeys.get(body.apiKey) ?? { valid: false });
        default:
          return Response.json({ error: "not found" }, { status: 404 });
      }
    },
  });
  fake.url = `http://127.0.0.1:${server.port}`;
  return fake;
}
