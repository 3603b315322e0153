/**
 * Login, logout, session and "who am I". The identity provider (local tables or a remote Identity
 * service) does the work; this module only speaks HTTP.
 */
import { Elysia } from "elysia";
import { extractCredentials, type AuthReply } from "../../auth/identity";
import { describePrincipal } from "../../auth/principal";
import { requestContext } from "../../http/context";
import { fail } from "../../core/errors";
import type { Services } from "../../services";
import { ErrorResponse, jsonBodyOnly } from "../shared-models";
import { AuthLoginResponse, AuthSession, AuthUser, LoginBody, LogoutResponse } from "./model";

/**
 * A login or logout answer as a Response of its own. With a remote Identity service it is that service's
 * answer passed through (any status, any body), which no schema of ours may reshape or refuse.
 */
function reply(result: AuthReply, requestId: string): Response {
  // Tokens in the body: no cache may keep them.
  const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store", "x-request-id": requestId, ...result.headers });
  for (const cookie of result.setCookies) headers.append("set-cookie", cookie);
  return new Response(JSON.stringify(result.body), { status: result.status, headers });
}

export function authModule(services: Services) {
  const { identity } = services;
  return new Elysia({ prefix: "/api/auth", tags: ["auth"] })
    .use(requestContext)
    .onParse(jsonBodyOnly)
    .post(
      "/login",
      async ({ body, request, clientIp, requestId }) =>
        reply(
          await identity.login(
            { email: body.email, password: body.password, ip: clientIp, userAgent: request.headers.get("user-agent") ?? undefined },
            request,
          ),
          requestId,
        ),
      {
        body: LoginBody,
        response: { 200: AuthLoginResponse, 401: ErrorResponse, 429: ErrorResponse },
        detail: { summary: "Log in with email and password; sets the session cookie" },
      },
    )
    .post(
      "/logout",
      async ({ request, requestId }) => reply(await identity.logout(extractCredentials(request.headers), request), requestId),
      {
        response: { 200: LogoutResponse },
        detail: {
          summary: "Revoke the caller's session and clear the cookie",
          description: "Only a session (bearer session token or cookie) is revoked. An API key is not a session: `revoked` is false and `note` says how keys are revoked.",
        },
      },
    )
    .get("/session", ({ principal }) => (principal ? { authenticated: true, user: describePrincipal(principal) } : { authenticated: false }), {
      response: { 200: AuthSession },
      detail: { summary: "The current session, or {authenticated: false}" },
    })
    .get(
      "/me",
      ({ principal }) => {
        if (!principal) throw fail.unauthorized();
        return describePrincipal(principal);
      },
      { response: { 200: AuthUser }, detail: { summary: "The authenticated principal" } },
    );
}
