/**
 * Input rules beyond what a schema can say: sizes in bytes, content types, JSON that must parse.
 */
import type { Config } from "../config";
import { fail } from "../core/errors";

/** Deeper JSON overflows the stack of a serialiser or of the database's parser; no real payload nests this far. */
export const MAX_METADATA_DEPTH = 64;

/** PostgreSQL text and jsonb hold neither U+0000 nor unpaired surrogates (which jsonb rejects as an escape). */
export function isStorableText(value: string): boolean {
  return !value.includes("\u0000") && value.isWellFormed();
}

/**
 * Metadata is free-form JSON, bounded so that one field cannot carry more than a message may, and
 * storable as jsonb. Walked iteratively so that nesting cannot exhaust the stack before it is refused.
 */
export function checkMetadata(config: Config, metadata: Record<string, unknown> | undefined): void {
  if (metadata === undefined) return;
  const pending: [unknown, number][] = [[metadata, 1]];
  while (pending.length > 0) {
    const [value, depth] = pending.pop()!;
    if (typeof value === "string") {
      if (!isStorableText(value)) throw fail.invalid_text("metadata holds a NUL character or an unpaired surrogate");
    } else if (value !== null && typeof value === "object") {
      if (depth > MAX_METADATA_DEPTH) throw fail.metadata_too_deep(`metadata nests deeper than ${MAX_METADATA_DEPTH} levels`);
      if (Array.isArray(value)) {
        for (const item of value) pending.push([item, depth + 1]);
      } else {
        for (const [key, item] of Object.entries(value)) {
          if (!isStorableText(key)) throw fail.invalid_text("metadata holds a NUL character or an unpaired surrogate");
          pending.push([item, depth + 1]);
        }
      }
    }
  }
  if (Buffer.byteLength(JSON.stringify(metadata)) > config.maxMessageBytes) {
    throw fail.too_large(`metadata exceeds ${config.maxMessageBytes} bytes`);
  }
}

/** `type/subtype` (with optional parameters) or a short token such as `markdown`. */
const CONTENT_TYPE = /^(?:[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}(?:\s*;\s*[a-z0-9_.-]+=[^;]{1,100}){0,4}|[a-z0-9][a-z0-9_.+-]{0,63})$/i;

/** `event` is reserved for control messages, which only POST /control creates. */
export function normaliseContentType(contentType: string | undefined): string {
  const value = (contentType ?? "text/plain").trim();
  if (!CONTENT_TYPE.test(value)) throw fail.invalid_content_type("contentType must be a media type (type/subtype) or a short token");
  if (value.toLowerCase() === "event") throw fail.reserved_content_type("contentType event is reserved for control events");
  return value;
}

export function checkContent(config: Config, content: string, contentType: string): void {
  if (content.length === 0 || content.trim().length === 0) throw fail.empty_content("content must not be empty");
  // Cheap bound first: a JS string's UTF-8 size is at most 3 bytes per UTF-16 unit.
  if (content.length * 3 > config.maxMessageBytes && Buffer.byteLength(content) > config.maxMessageBytes) {
    throw fail.too_large(`content exceeds ${config.maxMessageBytes} bytes`);
  }
  if (!isStorableText(content)) throw fail.invalid_text("content holds a NUL character or an unpaired surrogate");
  if (contentType.toLowerCase().startsWith("application/json")) {
    try {
      JSON.parse(content);
    } catch {
      throw fail.invalid_json_content("content is not valid JSON, as contentType application/json requires");
    }
  }
}
