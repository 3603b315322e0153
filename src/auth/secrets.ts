/**
 * Generation, hashing and constant-time comparison of session tokens and API keys. Tokens carry a public
 * lookup part and a random secret; only SHA-256 of the secret is stored.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SECRET = /^[A-Za-z0-9_-]{43}$/; // 32 bytes in base64url
const KEY_PREFIX = /^[a-z0-9]{12}$/;

export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

export function hashSecret(secret: string): string {
  return new Bun.CryptoHasher("sha256").update(secret).digest("hex");
}

export function sameHash(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, "hex");
  const b = Buffer.from(bHex, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Session token: `<session uuid>.<secret>`. */
export function formatSessionToken(sessionId: string, secret: string): string {
  return `${sessionId}.${secret}`;
}

export function parseSessionToken(token: string): { sessionId: string; secret: string } | null {
  const dot = token.indexOf(".");
  if (dot !== 36) return null;
  const sessionId = token.slice(0, 36);
  const secret = token.slice(37);
  return UUID.test(sessionId) && SECRET.test(secret) ? { sessionId, secret } : null;
}

export const API_KEY_MARK = "smk_";

export function newApiKey(): { prefix: string; secret: string; key: string } {
  const prefix = randomBytes(9).toString("base64url").toLowerCase().replace(/[^a-z0-9]/g, "0").slice(0, 12).padEnd(12, "0");
  const secret = newSecret();
  return { prefix, secret, key: `${API_KEY_MARK}${prefix}_${secret}` };
}

export function parseApiKey(key: string): { prefix: string; secret: string } | null {
  if (!key.startsWith(API_KEY_MARK)) return null;
  const prefix = key.slice(4, 16);
  const secret = key.slice(17);
  return key[16] === "_" && KEY_PREFIX.test(prefix) && SECRET.test(secret) ? { prefix, secret } : null;
}
