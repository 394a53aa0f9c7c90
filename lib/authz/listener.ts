import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { logger } from "../log";
import { metricsRefusal } from "../observability/metrics-access";
import { httpDuration, instanceMetricsContentType, instanceMetricsText } from "../observability/metrics";
import { answerUpgradesAsHttp1 } from "../http/h2c-upgrade.cjs";
import { BodyTooLarge, readBody } from "../http/node-adapter";
import { KEEP_ALIVE_MS, MAX_BODY_BYTES, type IncomingCall, type PlainAnswer } from "../http/plain";

/**
 * A lean HTTP listener for the hottest answers Latchkey gives: forward-auth for proxies
 * and token introspection for resource servers. Same functions, same checks (a revoked
 * credential is refused at once), without the page-rendering path around them and without
 * building web Requests and Responses. Run it with LATCHKEY_AUTHZ_PORT; proxies and
 * resource servers call it instead of the portal.
 */
type Handler = (call: IncomingCall) => Promise<PlainAnswer>;

/** The request as the routes see it: X-Forwarded-For gets the socket's address appended, as Next.js does. */
function incoming(req: IncomingMessage): IncomingCall {
  const address = req.socket.remoteAddress;
  const forwarded = req.headers["x-forwarded-for"];
  const forwardedFor = address ? (forwarded ? `${forwarded}, ${address}` : address) : (forwarded ?? null);
  return {
    headers: {
      get(name: string) {
        const key = name.toLowerCase();
        if (key === "x-forwarded-for") return typeof forwardedFor === "string" ? forwardedFor : null;
        const value = req.headers[key];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      },
    },
    text: async () => (await readBody(req, MAX_BODY_BYTES)).toString("utf8"),
  };
}

function send(res: ServerResponse, answer: PlainAnswer) {
  res.writeHead(answer.status, { ...answer.headers, "content-length": Buffer.byteLength(answer.body) }).end(answer.body);
}

export async function startAuthzListener(port: number, host = "0.0.0.0"): Promise<{ url: string; close: () => Promise<void> }> {
  const { answerForwardAuth } = await import("./forward-auth");
  const { introspect } = await import("./introspection");
  const routes: Record<string, Partial<Record<string, Handler>>> = {
    "/api/forward-auth": { GET: answerForwardAuth, HEAD: answerForwardAuth, POST: answerForwardAuth },
    "/api/oauth/introspect": { POST: introspect },
  };
  const log = logger("authz");
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const end = httpDuration.startTimer({ route: routes[path] ? path : "other", method: req.method ?? "GET" });
    res.once("finish", () => end({ status: String(res.statusCode) }));
    try {
      // Liveness for an orchestrator: the process answers (it needs no database to say so).
      if (path === "/api/health" && (req.method === "GET" || req.method === "HEAD"))
        return send(res, { status: 200, headers: { "content-type": "application/json", "cache-control": "no-store" }, body: '{"status":"ok"}' });
      // This process's own metrics; the cluster-wide ones are the portal's /api/metrics/cluster.
      if (path === "/metrics" && req.method === "GET") {
        const refusal = metricsRefusal(req.headers.authorization);
        if (refusal) return send(res, { status: refusal.status, headers: { "content-type": "text/plain; charset=utf-8" }, body: `${refusal.message}\n` });
        return send(res, {
          status: 200,
          headers: { "content-type": instanceMetricsContentType, "cache-control": "no-store" },
          body: await instanceMetricsText(),
        });
      }
      const handler = routes[path]?.[req.method ?? "GET"];
      if (!handler) {
        res
          .writeHead(routes[path] ? 405 : 404, { "content-type": "text/plain; charset=utf-8" })
          .end("Only /api/forward-auth, /api/oauth/introspect, /api/health and /metrics are served here.\n");
        return;
      }
      const answer = await handler(incoming(req));
      if (req.method === "HEAD") res.writeHead(answer.status, answer.headers).end();
      else send(res, answer);
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
  // Nothing is upgraded here: an upgrade request (h2c from the JDK's client) gets an ordinary answer on a connection that stays open.
  answerUpgradesAsHttp1(server, { all: true });
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const { port: bound } = server.address() as AddressInfo;
  return { url: `http://localhost:${bound}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
