/**
 * Many users with a login session each, and conversations with many participants, written straight into
 * the database (as test/support and bench/lib/principals.ts do, but in batches): creating ten thousand
 * principals through the API would take longer than the benchmark.
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { formatSessionToken, hashSecret, newSecret } from "../../src/auth/secrets";

export interface BenchUser {
  id: string;
  /** Session token for `Authorization: Bearer`. */
  token: string;
}

const BATCH = 1_000;

export async function createUsers(databaseUrl: string, count: number, label = "bench"): Promise<BenchUser[]> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const users: BenchUser[] = [];
  const expiresAt = new Date(Date.now() + 24 * 3600_000);
  try {
    for (let start = 0; start < count; start += BATCH) {
      const principals = [];
      const sessions = [];
      for (let i = start; i < Math.min(count, start + BATCH); i++) {
        const id = randomUUID();
        const sessionId = randomUUID();
        const secret = newSecret();
        principals.push({ id, type: "user", email: `${label}-${i}-${id}@bench.test`, name: `${label} ${i}` });
        sessions.push({ id: sessionId, principal_id: id, token_hash: hashSecret(secret), expires_at: expiresAt });
        users.push({ id, token: formatSessionToken(sessionId, secret) });
      }
      await sql`insert into principals ${sql(principals, "id", "type", "email", "name")}`;
      await sql`insert into sessions ${sql(sessions, "id", "principal_id", "token_hash", "expires_at")}`;
    }
  } finally {
    await sql.end();
  }
  return users;
}

/** Adds users as members of a conversation that already exists (created through the API). */
export async function addMembers(databaseUrl: string, conversationId: string, userIds: string[]): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    for (let start = 0; start < userIds.length; start += BATCH) {
      const rows = userIds.slice(start, start + BATCH).map((user_id) => ({
        conversation_id: conversationId,
        user_id,
        user_type: "user",
        role: "member",
      }));
      await sql`insert into participants ${sql(rows, "conversation_id", "user_id", "user_type", "role")}`;
    }
  } finally {
    await sql.end();
  }
}
