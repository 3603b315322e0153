/**
 * The error catalogue is the contract: every code maps to its documented status and `{error, code}` body
 * on REST, to the same code in a WebSocket ack error, and is listed in docs/api.md.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ValidationError, t } from "elysia";
import { AppError, ERROR_CATALOGUE, fail, isErrorCode, notFound, rateLimited, type ErrorCode } from "../../src/core/errors";
import { errorAnswer } from "../../src/http/error-response";
import { socketErrorOf } from "../../src/realtime/dispatch";
import { ackErrorFrame } from "../../src/realtime/frames";

const codes = Object.keys(ERROR_CATALOGUE) as ErrorCode[];
const apiDocs = readFileSync(new URL("../../docs/api.md", import.meta.url), "utf8");
const protocolDocs = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");

describe("the error catalogue", () => {
  test.each(codes)("%s: REST status and body, WebSocket ack, documented", (code) => {
    const entry = ERROR_CATALOGUE[code];
    const error = fail[code]("what happened");
    expect(error).toBeInstanceOf(AppError);
    expect(error.code).toBe(code);

    const rest = errorAnswer(error);
    expect(rest.status).toBe(entry.status);
    expect(rest.body).toEqual({ error: "what happened", code });

    const ack = JSON.parse(ackErrorFrame(7, ...codeAndMessage(socketErrorOf(error))));
    expect(ack).toEqual({ event: "ack", ack: 7, ok: false, error: { code, message: "what happened" } });

    expect(apiDocs.includes(`\`${code}\``) || protocolDocs.includes(`\`${code}\``)).toBe(true);
  });

  test("a throw site without a message gets the catalogue's", () => {
    expect(fail.not_participant().message).toBe(ERROR_CATALOGUE.not_participant.message);
    expect(notFound("Conversation").toBody()).toEqual({ error: "Conversation not found", code: "not_found" });
  });

  test("429 carries Retry-After in whole seconds, at least one", () => {
    expect(errorAnswer(rateLimited(0.2)).headers).toEqual({ "retry-after": "1" });
    expect(errorAnswer(rateLimited(2.5)).headers).toEqual({ "retry-after": "3" });
  });

  test("what is not an AppError: validation 400 (404 for path ids), database down 503, anything else 500 without details", () => {
    const schema = t.Object({ limit: t.Number() });
    const invalid = (type: "query" | "params") => new ValidationError(type, schema, { limit: "x" });
    expect(errorAnswer(invalid("query"))).toMatchObject({ status: 400, body: { code: "invalid_input" } });
    expect(errorAnswer(invalid("params"))).toMatchObject({ status: 404, body: { code: "not_found" } });
    expect(errorAnswer(Object.assign(new Error("gone"), { code: "ECONNREFUSED" }))).toMatchObject({ status: 503, body: { code: "database_unavailable" } });
    const internal = errorAnswer(new Error("select * from secrets"));
    expect(internal).toEqual({ status: 500, body: { error: "Internal server error", code: "internal_error" }, headers: undefined });
    expect(socketErrorOf(new Error("select * from secrets")).toBody()).toEqual({ error: "Internal server error", code: "internal_error" });
    expect(socketErrorOf(Object.assign(new Error("gone"), { code: "57P01" })).code).toBe("database_unavailable");
  });

  test("isErrorCode knows exactly the catalogue", () => {
    for (const code of codes) expect(isErrorCode(code)).toBe(true);
    expect(isErrorCode("toString")).toBe(false);
    expect(isErrorCode("admin_error")).toBe(false);
  });
});

function codeAndMessage(error: AppError): [string, string] {
  return [error.code, error.message];
}
