/**
 * Login, logout, session and "who am I". The identity provider (local tables or a remote Identity
 * service) does the work; this module only speaks HTTP.
 */
import { Elysia, t } from "elysia";
import { extractCredentials, type AuthReply } from "../../auth/identity";
import { describePrincipal } from "../../auth/principal";
import { requestContext } from "../../http/context";
import { fail } from "../../core/errors";
import type { Services } from "../../services";
import { jsonBodyOnly } from "../shared-models";

function reply(result: AuthReply, set: { status?: number | string; headers: Record<string, any> }) {
  set.status = result.status;
  if (result.headers) Object.assign(set.headers, result.headers);
  if (result.setCookies.length > 0) set.headers["set-cookie"] = result.setCookies.length === 1 ? result.setCookies[0] : result.setCookies;
  return result.body;
}

export function authModule(services: Services) {
  const { identity } = services;
  return new Elysia({ prefix: "/api/auth", tags: ["auth"] })
    .use(requestContext)
    .onParse(jsonBodyOnly)
    .post(
      "/login",
      async ({ body, request, clientIp, set }) =>
        reply(
          await identity.login(
            { email: body.email, password: body.password, ip: clientIp, userAgent: request.headers.get("user-agent") ?? undefined },
            request,
          ),
          set,
        ),
      {
        body: t.Object({ email: t.String({ minLength: 1, maxLength: 320 }), password: t.String({ minLength: 1, maxLength: 1024 }) }),
        detail: { summary: "Log in with email and password; sets the session cookie" },
      },
    )
    .post("/logout", async ({ request, set }) => reply(await identity.logout(extractCredentials(request.headers), request), set), {
      detail: { summary: "Revoke the caller's session and clear the cookie" },
    })
    .get("/session", ({ principal }) => (principal ? { authenticated: true, user: describePrincipal(principal) } : { authenticated: false }), {
      detail: { summary: "The current session, or {authenticated: false}" },
    })
    .get(
      "/me",
      ({ principal }) => {
        if (!principal) throw fail.unauthorized();
        return describePrincipal(principal);
      },
      { detail: { summary: "The authenticated principal" } },
    );
}
