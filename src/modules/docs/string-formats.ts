/**
 * Importing @elysiajs/openapi replaces TypeBox's string formats (uuid, email, date-time, …) with checks that
 * build a Zod or Valibot schema anew on every call: every request with an id in its path or body paid for
 * it (about a third of the server's CPU per send, measured with bench/rest-send.ts PROFILE=…). Elysia's
 * own checks (regular expressions and small functions) accept the same strings; they are put back here,
 * right after the plugin is imported, and for every format the plugin touched.
 */
import "@elysiajs/openapi";
import { FormatRegistry } from "@sinclair/typebox";
import { fullFormats } from "elysia/type-system/format";

for (const [name, format] of Object.entries(fullFormats) as [string, unknown][]) {
  if (format instanceof RegExp) FormatRegistry.Set(name, (value) => format.test(value));
  else if (typeof format === "function") FormatRegistry.Set(name, format as (value: string) => boolean);
}
