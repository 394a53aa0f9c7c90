import http from "node:http";

/** What a backend behind a proxy under test received. */
export interface Seen {
  backend: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * Backends that answer every request with what they received, as JSON, and keep it in
 * `hits`: a proxy test asserts what reached the backend (the identity headers, nothing
 * forged) and what never did.
 */
export function echoBackends() {
  const servers: http.Server[] = [];
  const hits: Seen[] = [];
  return {
    hits,
    start(name: string, port: number): Promise<void> {
      const server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (chunk) => (body += chunk));
        req.on("end", () => {
          const seen: Seen = { backend: name, method: req.method!, url: req.url!, headers: req.headers, body };
          hits.push(seen);
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(seen));
        });
      });
      servers.push(server);
      return new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    },
    close(): void {
      for (const s of servers) s.close();
    },
  };
}
