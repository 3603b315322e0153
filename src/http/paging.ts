/**
 * Paging headers of the list endpoints. A list answers one page as its array body (the contract's shape)
 * and says how to go on in headers: `Link: <url>; rel="next"` (RFC 8288) while there is more, and
 * `X-Total-Count` where the total is known. A client follows `next` until it is absent.
 */

type Headers = Record<string, string | number>;

/** The request's URL with some query parameters replaced, on PUBLIC_URL when that is set. */
function urlWith(request: Request, publicUrl: string | undefined, changes: Record<string, string>): string {
  const url = new URL(request.url);
  for (const [name, value] of Object.entries(changes)) url.searchParams.set(name, value);
  const base = publicUrl ?? url.origin;
  return `${base}${url.pathname}?${url.searchParams.toString()}`;
}

/** Offset paging: `offset + returned < total` means there is a next page. */
export function setOffsetPageHeaders(
  headers: Headers,
  request: Request,
  publicUrl: string | undefined,
  page: { limit: number; offset: number; returned: number; total: number },
): void {
  headers["x-total-count"] = String(page.total);
  const nextOffset = page.offset + page.returned;
  if (page.returned > 0 && nextOffset < page.total) {
    headers.link = `<${urlWith(request, publicUrl, { offset: String(nextOffset), limit: String(page.limit) })}>; rel="next"`;
  }
}

/** Cursor paging (messages): the next page starts past the last sequence in the paging direction. */
export function setCursorPageHeaders(
  headers: Headers,
  request: Request,
  publicUrl: string | undefined,
  next: Record<string, string> | undefined,
): void {
  if (next) headers.link = `<${urlWith(request, publicUrl, next)}>; rel="next"`;
}
