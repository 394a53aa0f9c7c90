import http from "node:http";
import type { AddressInfo } from "node:net";
import { logger } from "../log";
import { MAX_BODY_BYTES } from "../api/http";
import { BodyTooLarge, sendWebResponse, toWebRequest } from "./node-adapter";

/**
 * A lean HTTP listener for the hottest answers Latchkey gives: forward-auth for proxies
 * and token introspection for resource servers. Same handlers, same checks (a revoked
 * credential is refused at once), without the page-rendering path around them. Run it
 * with LATCHKEY_AUTHZ_PORT; proxies and resource servers call it instead of the portal.
 */
type Handler = (request: Request) => Promise<Response>;

export async function startAuthzListener(port: number, host = "0.0.0.0"): Promise<{ url: string; close: () => Promise<void> }> {
  const forwardAuth = await import("../../app/api/forward-auth/route");
  const introspect = await import("../../app/api/oauth/introspect/route");
  const routes: Record<string, Partial<Record<string, Handler>>> = {
    "/api/forward-auth": { GET: forwardAuth.GET, HEAD: forwardAuth.HEAD, POST: forwardAuth.POST },
    "/api/oauth/introspect": { POST: introspect.POST },
  };
  const log = logger("authz");
  const server = http.createServer(async (req, res) => {
    try {
      const path = (req.url ?? "/").split("?")[0]!;
      const handler = routes[path]?.[req.method ?? "GET"];
      if (!handler) {
        res.writeHead(routes[path] ? 405 : 404, { "content-type": "text/plain; charset=utf-8" }).end("Only /api/forward-auth and /api/oauth/introspect are served here.\n");
        return;
      }
      await sendWebResponse(res, await handler(await toWebRequest(req, "http://authz.local", { maxBody: MAX_BODY_BYTES, socketAddress: true })));
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        res.writeHead(413, { "content-type": "text/plain; charset=utf-8", connection: "close" }).end("The body is too large.\n");
        req.destroy();
        return;
      }
      log.error("unexpected failure", { error });
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("Something went wrong; access is refused.\n");
    }
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const { port: bound } = server.address() as AddressInfo;
  return { url: `http://localhost:${bound}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
