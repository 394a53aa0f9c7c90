import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/support/ports";
import { startApiServer } from "../helpers/api-server";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { HAPROXY } from "../helpers/haproxy";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * Debian's real HAProxy 2.6 running deploy/haproxy/forward-auth.cfg and its Lua action
 * (placeholders substituted) in front of an echo backend, asking the forward-auth route handler.
 */
const SHIPPED = "deploy/haproxy/forward-auth.cfg";
const PROXY_SECRET = randomBytes(24).toString("base64url");

interface Seen {
  url: string;
  method: string;
  headers: http.IncomingHttpHeaders;
}

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal;
let bob: Principal;
let dir: string;
let proxy: ChildProcess | undefined;
let output = "";
let backend: http.Server;
const hits: Seen[] = [];
/** The shipped frontend; with a secret Latchkey does not know; with Latchkey unreachable. */
let port: number, wrongSecretPort: number, unreachablePort: number;

/** The shipped file with one frontend per variant. Throws if a placeholder is gone, so this test keeps following the file. */
function config(shipped: string, upstream: number, variants: { name: string; port: number; secret: string; latchkey: string }[]): string {
  const must = (text: string, from: string) => {
    if (!text.includes(from)) throw new Error(`${SHIPPED} no longer contains "${from}": update the substitutions in this test.`);
  };
  const start = shipped.indexOf("\nfrontend payments") + 1;
  const end = shipped.indexOf("\nbackend payments") + 1;
  const head = shipped.slice(0, start);
  const frontend = shipped.slice(start, end);
  const tail = shipped.slice(end);
  must(head, "/etc/haproxy/latchkey-forward-auth.lua");
  must(tail, "payments-api.internal:8080");
  const frontends = variants.map((v) => {
    let text = frontend;
    for (const [from, to] of [
      ["frontend payments", `frontend ${v.name}`],
      ["bind :443 ssl crt /etc/haproxy/tls/payments.internal.example.com.pem", `bind 127.0.0.1:${v.port}`],
      ["http://latchkey.internal:3000", v.latchkey],
      ["REPLACE_WITH_LATCHKEY_FORWARD_AUTH_SECRET", v.secret],
      ['"payments.internal.example.com"', '"payments.staging.test"'],
    ] as const) {
      must(text, from);
      text = text.replaceAll(from, to);
    }
    return text;
  });
  return (
    head
      .replace("/etc/haproxy/latchkey-forward-auth.lua", path.resolve("deploy/haproxy/latchkey-forward-auth.lua"))
      .replace("log stdout format raw local0", "") +
    frontends.join("") +
    tail.replace("payments-api.internal:8080", `127.0.0.1:${upstream}`)
  );
}

function call(listenPort: number, uri: string, options: { token?: string; cookie?: string; headers?: Record<string, string>; host?: string } = {}) {
  const headers: Record<string, string> = { host: options.host ?? "payments.staging.test", ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.cookie) headers.cookie = options.cookie;
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string; seen?: Seen }>((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: listenPort, path: uri, headers, agent: false }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          text,
          seen: res.headers["content-type"] === "application/json" ? (JSON.parse(text) as Seen) : undefined,
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

async function refused(listenPort: number, uri: string, options: Parameters<typeof call>[2] = {}) {
  const before = hits.length;
  const answer = await call(listenPort, uri, options);
  expect(hits.length, `${uri} reached the backend`).toBe(before);
  return answer;
}

beforeAll(async () => {
  if (!existsSync(HAPROXY)) throw new Error(`HAProxy is not installed at ${HAPROXY}: apt-get install -y haproxy (npm test does this as root).`);
  fx = await engineFixture({ LATCHKEY_FORWARD_AUTH_PROXIES: `edge-haproxy=${PROXY_SECRET}` });
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  api = await startApiServer();
  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-haproxy-fa-"));
  const upstream = await freePort();
  backend = http.createServer((req, res) => {
    const seen: Seen = { url: req.url!, method: req.method!, headers: req.headers };
    hits.push(seen);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(seen));
  });
  await new Promise<void>((resolve) => backend.listen(upstream, "127.0.0.1", resolve));
  [port, wrongSecretPort, unreachablePort] = [await freePort(), await freePort(), await freePort()];
  const latchkey = api.url.replace("localhost", "127.0.0.1");
  const text = config(await readFile(SHIPPED, "utf8"), upstream, [
    { name: "payments", port, secret: PROXY_SECRET, latchkey },
    { name: "wrong_secret", port: wrongSecretPort, secret: randomBytes(24).toString("base64url"), latchkey },
    { name: "unreachable", port: unreachablePort, secret: PROXY_SECRET, latchkey: `http://127.0.0.1:${await freePort()}` },
  ]);
  await writeFile(path.join(dir, "haproxy.cfg"), text);
  proxy = spawn(HAPROXY, ["-f", path.join(dir, "haproxy.cfg"), "-db"], { stdio: ["ignore", "pipe", "pipe"] });
  proxy.stdout!.on("data", (c) => (output += c));
  proxy.stderr!.on("data", (c) => (output += c));
  for (let i = 0; i < 100; i++) {
    if (proxy.exitCode !== null) break;
    try {
      await call(port, "/");
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`HAProxy did not start:\n${output}`);
});

afterAll(async () => {
  if (proxy && proxy.exitCode === null) {
    const exited = new Promise((resolve) => proxy!.once("exit", resolve));
    proxy.kill("SIGTERM");
    await exited;
  }
  backend?.close();
  await api?.close();
  await fx?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function grant(overrides: Record<string, unknown> = {}) {
  const request = await engine.createRequest(alice, "temporary-access", validInput(overrides));
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
  return { requestId: request.id, token: (await engine.revealCredential(alice, request.id)).token };
}

describe("HAProxy with deploy/haproxy/forward-auth.cfg", () => {
  it("lets a valid credential through with Latchkey's identity, replacing what the client sent", async () => {
    const { requestId, token } = await grant();
    const forged = { "x-latchkey-user": "mallory@example.com", "x-latchkey-grant": "forged", "x-latchkey-extra": "x", "x-latchkey-proxy-secret": PROXY_SECRET };
    const ok = await call(port, "/v1/payments?limit=5", { token, headers: forged });
    expect(ok.status).toBe(200);
    expect(ok.seen).toMatchObject({ method: "GET", url: "/v1/payments?limit=5" });
    expect(ok.seen!.headers).toMatchObject({
      "x-latchkey-user": "alice@example.com",
      "x-latchkey-groups": "engineering",
      "x-latchkey-grant": requestId,
      "x-latchkey-role": "read",
    });
    for (const name of ["x-latchkey-extra", "x-latchkey-proxy-secret"]) expect(ok.seen!.headers[name], name).toBeUndefined();
  });

  it("refuses no or a forged credential (401, with WWW-Authenticate) and a grant for another site or path (403)", async () => {
    const { token } = await grant();
    const none = await refused(port, "/", { headers: { "x-latchkey-user": "mallory@example.com" } });
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toMatch(/^Bearer/);
    const [header, , signature] = token.split(".");
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...decodeJwt(token), sub: "mallory@example.com" })).toString("base64url")}.${signature}`;
    expect((await refused(port, "/", { token: tampered })).status).toBe(401);
    const { token: scratchToken } = await grant({ targetId: "scratch", durationMinutes: 5 });
    expect((await refused(port, "/reports/daily", { token: scratchToken })).status).toBe(403);
    // The site's own name is what Latchkey judges, whatever Host the client names.
    expect((await refused(port, "/reports/daily", { token: scratchToken, host: "scratch.test" })).status).toBe(403);
  });

  it("refuses a credential the moment its grant is revoked; a portal session with a grant gets through", async () => {
    const revoked = await grant();
    expect((await call(port, "/", { token: revoked.token })).status).toBe(200);
    await engine.revokeGrant(alice, { requestId: revoked.requestId, reason: "done early" });
    expect((await refused(port, "/", { token: revoked.token })).status).toBe(401);

    await grant();
    const session = randomBytes(16).toString("hex");
    await fx.db.session.create({ data: { sessionToken: session, userId: alice.id, expires: new Date(Date.now() + 3600_000) } });
    const ok = await call(port, "/dashboard", { cookie: `theme=dark; next-auth.session-token=${session}` });
    expect(ok.status).toBe(200);
    expect(ok.seen!.headers["x-latchkey-user"]).toBe("alice@example.com");
  });

  it("fails closed: a wrong proxy secret is a 403 for everyone, Latchkey unreachable a 503", async () => {
    const { token } = await grant();
    expect((await call(port, "/", { token })).status).toBe(200);
    expect((await refused(wrongSecretPort, "/", { token })).status).toBe(403);
    expect((await refused(unreachablePort, "/", { token })).status).toBe(503);
  });
});
