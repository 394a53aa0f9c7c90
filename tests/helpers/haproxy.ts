import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { freePort } from "../../scripts/support/ports";

/** Debian's real HAProxy 2.6 with the example configuration from deploy/haproxy/. */
export const HAPROXY = "/usr/sbin/haproxy";

export interface Haproxy {
  /** Where HAProxy routes credentials: `${url}/app1/...` reaches backend app1. */
  url: string;
  /** Its Runtime API socket. */
  socket: string;
  /** The master process (master-worker mode): SIGUSR2 reloads it, as `systemctl reload` does. */
  pid: number;
  /** Everything HAProxy wrote to stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Runs HAProxy in master-worker mode with deploy/haproxy/haproxy.cfg in `dir`: the key
 * directory Latchkey writes (npm run keys:pem -- --dir, or the worker's LATCHKEY_KEY_DIR),
 * the routes map file (which must exist), the Runtime API socket, and backends app1 and
 * app2 that answer with their name and the subject HAProxy read from the credential.
 */
export async function startHaproxy(dir: string, options: { keyDir: string; mapFile: string }): Promise<Haproxy> {
  if (!existsSync(HAPROXY)) throw new Error(`HAProxy is not installed at ${HAPROXY}: apt-get install -y haproxy (npm test does this as root).`);
  const [port, app1, app2] = [await freePort(), await freePort(), await freePort()];
  const socket = path.join(dir, "haproxy.sock");
  const config = (await readFile("deploy/haproxy/haproxy.cfg", "utf8"))
    .replaceAll("/etc/haproxy/latchkey-keys", options.keyDir)
    .replaceAll("/etc/haproxy/latchkey-routes.map", options.mapFile)
    .replaceAll("/run/haproxy/latchkey.sock", socket)
    .replace("127.0.0.1:8080", `127.0.0.1:${port}`)
    .replace("127.0.0.1:9001", `127.0.0.1:${app1}`)
    .replace("127.0.0.1:9002", `127.0.0.1:${app2}`);
  await writeFile(path.join(dir, "haproxy.cfg"), config);
  const backends = await Promise.all(
    [
      ["app1", app1],
      ["app2", app2],
    ].map(([name, at]) => {
      const server = http.createServer((req, res) => res.end(`${name} for ${req.headers["x-latchkey-subject"]}`));
      return new Promise<http.Server>((resolve) => server.listen(Number(at), "127.0.0.1", () => resolve(server)));
    }),
  );
  const proxy = spawn(HAPROXY, ["-W", "-db", "-f", path.join(dir, "haproxy.cfg")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proxy.stderr!.on("data", (c) => (stderr += c));
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
  const stop = async () => {
    const exited = new Promise((r) => proxy.once("exit", r));
    if (proxy.exitCode === null) proxy.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    for (const b of backends) b.close();
  };
  if (!existsSync(socket)) {
    await stop();
    throw new Error(`HAProxy did not start:\n${stderr}`);
  }
  return { url: `http://127.0.0.1:${port}`, socket, pid: proxy.pid!, stderr: () => stderr, stop };
}

export interface RuntimeRecorder {
  /** The socket to give Latchkey (LATCHKEY_HAPROXY_SOCKET). */
  path: string;
  /** Every command, in the order it arrived. */
  commands: string[];
  /** HAProxy's answer to commands matching `pattern` reaches the caller `ms` late (the command takes effect at once); null: none held. */
  holdAnswers(pattern: RegExp | null, ms?: number): void;
  /** Sends every answer held back so far at once, without waiting out its time. */
  releaseHeld(): void;
  close(): Promise<void>;
}

/**
 * A socket in front of HAProxy's Runtime API that passes each command on and records it,
 * so a test can count what Latchkey did to the proxy. Latchkey sends one command per
 * connection and half-closes; HAProxy answers and closes.
 */
export async function recordRuntimeApi(socketPath: string, upstreamSocket: string): Promise<RuntimeRecorder> {
  const commands: string[] = [];
  let hold: { pattern: RegExp; ms: number } | null = null;
  /** Answers held back, each sent when its time is up or when released. */
  const held = new Set<() => void>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    let command = "";
    client.on("error", () => undefined); // the caller may be killed while it waits
    client.on("data", (chunk) => (command += chunk.toString()));
    client.on("end", () => {
      commands.push(command.trim());
      const ms = hold?.pattern.test(command) ? hold.ms : 0;
      const upstream = net.connect({ path: upstreamSocket });
      let answer = "";
      upstream.on("connect", () => upstream.end(command));
      upstream.on("data", (chunk) => (answer += chunk.toString()));
      upstream.on("error", () => client.destroy());
      upstream.on("close", () => {
        const send = () => {
          clearTimeout(timer);
          held.delete(send);
          client.end(answer);
        };
        const timer = setTimeout(send, ms);
        held.add(send);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, resolve);
  });
  return {
    path: socketPath,
    commands,
    holdAnswers(pattern, ms = 0) {
      hold = pattern ? { pattern, ms } : null;
    },
    releaseHeld() {
      for (const send of [...held]) send();
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
