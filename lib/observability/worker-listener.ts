/**
 * The worker's own small listener (LATCHKEY_WORKER_PORT), so a worker running apart from the
 * web server can be probed and scraped: /api/health answers while the process and its job
 * queue are up, /metrics serves this process's series (revocation latency, process figures)
 * to a scraper holding LATCHKEY_METRICS_TOKEN.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { metricsRefusal } from "./metrics-access";
import { instanceMetricsContentType, instanceMetricsText } from "./metrics";

export async function startWorkerListener(port: number, host: string, healthy: () => boolean): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/api/health" && req.method === "GET") {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify({ status: ok ? "ok" : "stopped" }));
      return;
    }
    if (path === "/metrics" && req.method === "GET") {
      const refusal = metricsRefusal(req.headers.authorization);
      if (refusal) return void res.writeHead(refusal.status, { "content-type": "text/plain; charset=utf-8" }).end(`${refusal.message}\n`);
      res.writeHead(200, { "content-type": instanceMetricsContentType, "cache-control": "no-store" }).end(await instanceMetricsText());
      return;
    }
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Only /api/health and /metrics are served here.\n");
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const { port: bound } = server.address() as AddressInfo;
  return { url: `http://localhost:${bound}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
