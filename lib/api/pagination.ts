import "server-only";
import { z } from "zod";
import { fieldErrorsOf, invalid } from "../errors";
import { storableString } from "../text";
import { ApiAnswer } from "./http";

/**
 * Cursor pagination for every /api/v1 list: `?limit=` (1–200, 50 by default) and an opaque
 * `cursor` that the previous page's `next` link carries. The cursor is keyset (the last
 * row's sort key and id), not an offset, so a page never repeats or skips a row when rows
 * are added meanwhile. It is base64url JSON: opaque by contract, not a secret (it holds
 * nothing the caller cannot already read), and checked strictly when it comes back.
 */

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

export const pageQuerySchema = z.object({
  limit: z.coerce
    .number({ error: `Use a whole number from 1 to ${MAX_LIMIT}.` })
    .int(`Use a whole number from 1 to ${MAX_LIMIT}.`)
    .min(1, `Use a whole number from 1 to ${MAX_LIMIT}.`)
    .max(MAX_LIMIT, `Use a whole number from 1 to ${MAX_LIMIT}.`)
    .default(DEFAULT_LIMIT),
  cursor: z.string().max(512, "This cursor is not one Latchkey gave out.").optional(),
});

/** The keyset position a cursor holds: a sort key (an ISO time or an id) and the row's id. */
// Decoded from a cursor the caller sent: a hand-made one may carry text PostgreSQL cannot store, refused as a bad cursor.
const positionSchema = z.tuple([storableString().max(200), storableString().max(200)]);
export type Position = z.infer<typeof positionSchema>;

export interface PageRequest {
  limit: number;
  after: Position | null;
}

/** Reads `limit` and `cursor` from the query string; a bad one is a 400 naming the parameter. */
export function readPage(request: Request): PageRequest {
  const query = new URL(request.url).searchParams;
  const parsed = pageQuerySchema.safeParse({ limit: query.get("limit") ?? undefined, cursor: query.get("cursor") ?? undefined });
  if (!parsed.success) throw invalid("Some query parameters need attention.", fieldErrorsOf(parsed.error.issues));
  return { limit: parsed.data.limit, after: parsed.data.cursor === undefined ? null : decodeCursor(parsed.data.cursor) };
}

export function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify(position)).toString("base64url");
}

function decodeCursor(cursor: string): Position {
  const refused = () => invalid("This cursor is not one Latchkey gave out; start again without it.", { cursor: "This cursor is not one Latchkey gave out." });
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw refused();
  try {
    const parsed = positionSchema.safeParse(JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")));
    if (parsed.success) return parsed.data;
  } catch {
    // falls through to the refusal
  }
  throw refused();
}

/** A time position as a Date, refusing one that is not a time. */
export function positionTime(position: Position): Date {
  const at = new Date(position[0]);
  if (Number.isNaN(at.getTime()))
    throw invalid("This cursor is not one Latchkey gave out; start again without it.", { cursor: "This cursor is not one Latchkey gave out." });
  return at;
}

/**
 * One page as the API answers it: `{ [key]: items, next }`, where `next` is the link to the
 * next page (relative to the API's origin, so it holds behind any proxy) or null on the last
 * page, also sent as `Link: <…>; rel="next"` (RFC 8288).
 */
export function pageAnswer<T>(request: Request, key: string, rows: T[], page: PageRequest, positionOf: (row: T) => Position): ApiAnswer {
  const more = rows.length > page.limit;
  const items = more ? rows.slice(0, page.limit) : rows;
  let next: string | null = null;
  if (more) {
    const url = new URL(request.url);
    url.searchParams.set("limit", String(page.limit));
    url.searchParams.set("cursor", encodeCursor(positionOf(items.at(-1)!)));
    next = `${url.pathname}?${url.searchParams}`;
  }
  return new ApiAnswer({ [key]: items, next }, next ? { headers: { link: `<${next}>; rel="next"` } } : {});
}
