/**
 * Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, with
 * secrets `whsec_<base64>`. Signing is the `standardwebhooks` package's; during a secret rotation both
 * secrets sign, space-separated, so that receivers verify with either.
 */
import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";

export const SECRET_PREFIX = "whsec_";

export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(24).toString("base64");
}

/** Signers by secret (a signer decodes its secret once); a rotated-out secret drops out after a while. */
const signers = new Map<string, Webhook>();
const MAX_SIGNERS = 1000;

function signerOf(secret: string): Webhook {
  let signer = signers.get(secret);
  if (!signer) {
    if (signers.size >= MAX_SIGNERS) signers.clear();
    signer = new Webhook(secret);
    signers.set(secret, signer);
  }
  return signer;
}

export function signatureHeader(secrets: string[], id: string, timestamp: Date, body: string): string {
  return secrets.map((secret) => signerOf(secret).sign(id, timestamp, body)).join(" ");
}
