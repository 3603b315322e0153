import { t } from "elysia";

export const Health = t.Object(
  { status: t.Union([t.Literal("ok"), t.Literal("degraded")]), service: t.String() },
  { title: "Health", description: "Liveness and database state" },
);

const AuthMethod = t.Object({
  type: t.String(),
  header: t.Optional(t.String()),
  cookie: t.Optional(t.String()),
  parameters: t.Optional(t.Array(t.String())),
  description: t.String(),
});

export const Bootstrap = t.Object(
  {
    service: t.String(),
    version: t.String(),
    description: t.String(),
    environment: t.String(),
    docsUrls: t.Object({ openapi: t.String(), ui: t.String(), llms: t.String(), websocket: t.String() }),
    endpoints: t.Array(t.Object({ method: t.String(), path: t.String() })),
    authentication: t.Object({
      mode: t.Union([t.Literal("local"), t.Literal("remote")]),
      methods: t.Array(AuthMethod),
      login: t.String(),
      entitlements: t.Array(t.String()),
    }),
    websocketEvents: t.Object({ client: t.Array(t.String()), server: t.Array(t.String()) }),
  },
  { title: "Bootstrap", description: "What this service is and how to talk to it" },
);
