import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Route handlers are web functions (a Request in, a Response out). These adapt them to a
 * plain node:http server: the fast authorization listener (lib/authz/listener.ts) and
 * the tests, which serve app/api without building Next.js.
 */

export class BodyTooLarge extends Error {}

/**
 * The web Request for a node request. `maxBody` bounds what is read (BodyTooLarge past it);
 * with `socketAddress`, X-Forwarded-For gets the socket's address appended, as Next.js and
 * proxies do, so the last hop is never one the client wrote.
 */
export async function toWebRequest(req: IncomingMessage, origin: string, options: { maxBody?: number; socketAddress?: boolean } = {}): Promise<Request> {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
  if (options.socketAddress && req.socket.remoteAddress) {
    const forwarded = headers.get("x-forwarded-for");
    headers.set("x-forwarded-for", forwarded ? `${forwarded}, ${req.socket.remoteAddress}` : req.socket.remoteAddress);
  }
  const method = req.method ?? "GET";
  const body = method !== "GET" && method !== "HEAD" ? await readBody(req, options.maxBody) : undefined;
  // A Node Buffer is a Uint8Array, which Request takes; the DOM library's BodyInit does not name Buffer's backing store.
  return new Request(new URL(req.url ?? "/", origin), { method, headers, body: body as unknown as BodyInit | undefined });
}

/** The whole body of a node request; BodyTooLarge past `maxBody` bytes. */
export async function readBody(req: IncomingMessage, maxBody?: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (maxBody !== undefined && size > maxBody) throw new BodyTooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function sendWebResponse(res: ServerResponse, response: Response): Promise<void> {
  res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
  res.end(Buffer.from(await response.arrayBuffer()));
}
