/** Creates a user with a session directly in the database, for benchmarks. */
import { randomUUID } from "node:crypto";
import type { Db } from "../../src/db/client";
import { principals, sessions } from "../../src/db/schema";
import { formatSessionToken, hashSecret, newSecret } from "../../src/auth/secrets";

export async function createBenchPrincipal(db: Db, entitlements: string[] = []): Promise<{ id: string; token: string }> {
  const id = randomUUID();
  await db.insert(principals).values({ id, type: "user", email: `${id}@bench.test`, name: "bench", entitlements });
  const sessionId = randomUUID();
  const secret = newSecret();
  await db.insert(sessions).values({
    id: sessionId,
    principal_id: id,
    token_hash: hashSecret(secret),
    expires_at: new Date(Date.now() + 24 * 3600_000),
  });
  return { id, token: formatSessionToken(sessionId, secret) };
}
