/** What the routes need of an incoming request; a web Request is one, and so is the lean listener's. */
export interface HeaderSource {
  get(name: string): string | null;
}
export interface IncomingCall {
  headers: HeaderSource;
  text(): Promise<string>;
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or null. */
export function bearerToken(authorization: string | null | undefined): string | null {
  return authorization?.match(/^Bearer\s+(\S+)$/i)?.[1] ?? null;
}

/**
 * How long the web server and the lean listener keep an idle keep-alive connection: longer than
 * a load balancer or proxy keeps its upstream connections (60 s is common; Node.js's own default
 * is 5 s), so neither side sends a request on a connection the other is closing, which the
 * caller sees as a reset or a 502.
 */
export const KEEP_ALIVE_MS = 65_000;

/** The largest request body any route or the lean listener reads (64 KiB). */
export const MAX_BODY_BYTES = 64 * 1024;

/** An answer as plain data, so the lean listener can write it without building a web Response. */
export interface PlainAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A short plain-text answer that is never cached: refusals and notices from the routes. */
export function plain(status: number, message: string, headers: Record<string, string> = {}): PlainAnswer {
  return { status, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers }, body: `${message}\n` };
}

export function plainJson(status: number, data: unknown, headers: Record<string, string> = {}): PlainAnswer {
  return { status, headers: { "content-type": "application/json", "cache-control": "no-store", ...headers }, body: JSON.stringify(data) };
}

export function toResponse(answer: PlainAnswer): Response {
  return new Response(answer.body, { status: answer.status, headers: answer.headers });
}

export async function fromResponse(response: Response): Promise<PlainAnswer> {
  return { status: response.status, headers: Object.fromEntries(response.headers.entries()), body: await response.text() };
}

export function plainText(status: number, message: string, headers: Record<string, string> = {}): Response {
  return toResponse(plain(status, message, headers));
}
