/**
 * Query parameters of the WebSocket upgrade that are not credentials: checked by the gate before any
 * socket exists (a bad one is 400), read again by the hub when the socket opens.
 */
import { fail } from "../core/errors";

/** `?addedSince=<ISO time>`: tell the new connection of conversations its principal joined since then. */
export const ADDED_SINCE_QUERY = "addedSince";

/** The time named by `addedSince`, undefined without one; throws invalid_input for anything but a time. */
export function addedSinceOf(query: URLSearchParams | undefined): Date | undefined {
  const value = query?.get(ADDED_SINCE_QUERY);
  if (value === null || value === undefined) return undefined;
  // An ISO 8601 date-time with its zone, as serverTime and every timestamp of the API are written.
  const time = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/.test(value) ? new Date(value) : undefined;
  if (!time || Number.isNaN(time.getTime())) {
    throw fail.invalid_input(`${ADDED_SINCE_QUERY} must be an ISO 8601 time with its zone, such as 2026-12-01T20:33:33.113Z`);
  }
  return time;
}
