import { t } from "elysia";

export const LoginBody = t.Object({
  email: t.String({ minLength: 1, maxLength: 320 }),
  password: t.String({ minLength: 1, maxLength: 1024 }),
});

export const AuthUser = t.Object(
  {
    id: t.String(),
    type: t.Union([t.Literal("user"), t.Literal("agent"), t.Literal("service")]),
    name: t.Nullable(t.String()),
    email: t.Nullable(t.String()),
    orgs: t.Array(t.Object({ id: t.String(), role: t.Union([t.Literal("admin"), t.Literal("member")]) })),
    entitlements: t.Array(t.String()),
    isSuperAdmin: t.Boolean(),
    actedBy: t.Optional(
      t.Object(
        { id: t.String(), type: t.Union([t.Literal("user"), t.Literal("agent"), t.Literal("service")]) },
        { description: "Present while a service acts for this principal (X-As-User-Id): the caller" },
      ),
    ),
  },
  { title: "AuthUser", description: "The authenticated principal" },
);

/** With a remote Identity service the answer is that service's, passed through: more fields may come. */
export const AuthLoginResponse = t.Object(
  {
    token: t.Optional(t.String({ description: "Session token; also set as the symbia_session cookie" })),
    user: t.Optional(AuthUser),
    expiresAt: t.Optional(t.String({ format: "date-time" })),
  },
  { title: "AuthLoginResponse", description: "Logged in", additionalProperties: true },
);

export const AuthSession = t.Object(
  { authenticated: t.Boolean(), user: t.Optional(AuthUser) },
  { title: "AuthSession", description: "The current session" },
);

export const LogoutResponse = t.Object(
  {
    ok: t.Boolean(),
    revoked: t.Optional(t.Boolean({ description: "Whether a session was revoked (false: none was presented)" })),
    note: t.Optional(t.String()),
  },
  { title: "LogoutResponse", description: "Logged out", additionalProperties: true },
);
