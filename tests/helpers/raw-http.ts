import { execFile } from "node:child_process";
import net from "node:net";

/**
 * Sends bytes exactly as written over one TCP connection and collects the raw answer until
 * the server closes it, for requests fetch() will not send (an h2c upgrade, pipelining).
 */
export function rawExchange(url: string, request: string, timeoutMs = 15_000): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname === "localhost" ? "127.0.0.1" : hostname, port: Number(port) });
    let answer = "";
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no complete answer within ${timeoutMs} ms; got: ${answer.slice(0, 500)}`)));
    socket.on("connect", () => socket.write(request));
    socket.on("data", (chunk) => (answer += chunk.toString("latin1")));
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
  });
}

/**
 * Asks `path` on one keep-alive connection, leaves the connection idle for `idleMs`, then asks
 * again on it. Returns the status lines of both answers, or where the server closed it.
 */
export function askAgainAfterIdle(url: string, path: string, idleMs: number): Promise<{ first: string; second: string } | { closedAfterMs: number }> {
  const { hostname, port, host } = new URL(url);
  const request = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname === "localhost" ? "127.0.0.1" : hostname, port: Number(port) });
    let answer = "";
    let idleSince = 0;
    socket.setTimeout(idleMs + 15_000, () => socket.destroy(new Error(`no second answer; got: ${answer.slice(0, 500)}`)));
    socket.on("connect", () => socket.write(request));
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
      // A status line follows the last body directly (no line break before it), so not statusLines' anchored match.
      const lines = answer.match(/HTTP\/1\.[01] \d{3}[^\r\n]*/g) ?? [];
      if (lines.length === 1 && !idleSince) {
        idleSince = Date.now();
        setTimeout(() => {
          if (!socket.destroyed) socket.write(request);
        }, idleMs);
      }
      if (lines.length === 2) {
        resolve({ first: lines[0]!, second: lines[1]! });
        socket.destroy();
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve({ closedAfterMs: idleSince ? Date.now() - idleSince : 0 }));
  });
}

/** The status lines of every response in a raw answer, in order. */
export const statusLines = (answer: string) => answer.match(/^HTTP\/\d\.\d \d{3}[^\r\n]*/gm) ?? [];

/** A request asking to upgrade to cleartext HTTP/2, as the JDK's HttpClient sends it. */
export function h2cRequest(method: string, path: string, host: string, headers: Record<string, string> = {}, body = ""): string {
  const lines = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${host}`,
    "Connection: Upgrade, HTTP2-Settings",
    "Upgrade: h2c",
    "HTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA",
    "User-Agent: Java-http-client/17.0.15",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ...(body ? [`Content-Length: ${Buffer.byteLength(body)}`] : []),
  ];
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

/** Runs docs/examples/LatchkeyVerifier.java with the JDK on one token: its answer line ("verified ..." or "refused: ..."), or its error output. */
export function javaVerifier(jwksUrl: string, issuer: string, audience: string, token: string): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile("java", ["docs/examples/LatchkeyVerifier.java", jwksUrl, issuer, audience], { timeout: 90_000 }, (error, stdout, stderr) =>
      resolve(stdout.trim() || `${error?.message ?? ""}\n${stderr}`),
    );
    child.stdin!.end(token);
  });
}
