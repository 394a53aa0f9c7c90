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
