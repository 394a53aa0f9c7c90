import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/support/ports";
import { startApiServer } from "../helpers/api-server";
import { echoBackends, type Seen } from "../helpers/echo-backend";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { entra, okta } from "../fakes/scim-clients";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * Debian's real nginx running deploy/nginx/latchkey-forward-auth.conf (placeholders
 * substituted) in front of two echo backends, asking the forward-auth route handler.
 */
const NGINX = "/usr/sbin/nginx";
const SHIPPED = "deploy/nginx/latchkey-forward-auth.conf";
const PROXY_SECRET = randomBytes(24).toString("base64url");

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal;
let bob: Principal;
let dir: string;
let nginx: ChildProcess | undefined;
let stderr = "";
/** Both sites on one port, as a real deployment would have them. */
let port: number;
/** The shipped file alone on its port: the payments block is the port's default server. */
let lonePort: number;
/** The shipped file with a secret Latchkey does not know. */
let wrongSecretPort: number;
const backends = echoBackends();
const { hits } = backends;

/** The shipped server block for one site. Throws if a placeholder is gone, so this test keeps following the file. */
function site(shipped: string, s: { port: number; host: string; upstream: number; secret: string; cert: string; key: string }): string {
  const replacements: [string, string][] = [
    ["listen 443 ssl;", `listen 127.0.0.1:${s.port} ssl;`],
    ["server_name payments.internal.example.com;", `server_name ${s.host};`],
    ["/etc/nginx/tls/payments.internal.example.com.crt", s.cert],
    ["/etc/nginx/tls/payments.internal.example.com.key", s.key],
    ["http://payments-api.internal:8080", `http://127.0.0.1:${s.upstream}`],
    ["http://latchkey.internal:3000", api.url],
    ["REPLACE_WITH_LATCHKEY_FORWARD_AUTH_SECRET", s.secret],
  ];
  let conf = shipped;
  for (const [from, to] of replacements) {
    if (!conf.includes(from)) throw new Error(`${SHIPPED} no longer contains "${from}": update the substitutions in this test.`);
    conf = conf.replaceAll(from, to);
  }
  return conf;
}

/** One request through nginx, with the Host (and SNI) of the site asked for. */
function call(
  listenPort: number,
  host: string,
  uri: string,
  options: { token?: string; cookie?: string; headers?: Record<string, string>; method?: string; body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string; seen?: Seen }> {
  const headers: Record<string, string> = { host, ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.cookie) headers.cookie = options.cookie;
  return new Promise((resolve, reject) => {
    // The certificate is a throwaway self-signed one: TLS is not what is tested here.
    const req = https.request(
      { host: "127.0.0.1", port: listenPort, path: uri, method: options.method ?? "GET", headers, servername: host, rejectUnauthorized: false, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => {
          const fromBackend = res.headers["content-type"] === "application/json";
          resolve({ status: res.statusCode!, headers: res.headers, text, seen: fromBackend ? (JSON.parse(text) as Seen) : undefined });
        });
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Refused by nginx, and the backend never saw the request. */
async function refused(listenPort: number, host: string, uri: string, options: Parameters<typeof call>[3] = {}) {
  const before = hits.length;
  const answer = await call(listenPort, host, uri, options);
  expect(hits.length, `${host}${uri} reached a backend`).toBe(before);
  expect(answer.seen).toBeUndefined();
  return answer;
}

async function waitForNginx() {
  for (let i = 0; i < 100; i++) {
    if (nginx?.exitCode !== null) break;
    try {
      await call(port, "payments.staging.test", "/");
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const log = existsSync(path.join(dir, "error.log")) ? await readFile(path.join(dir, "error.log"), "utf8") : "";
  throw new Error(`nginx did not start:\n${stderr}\n${log}`);
}

beforeAll(async () => {
  if (!existsSync(NGINX)) throw new Error(`nginx is not installed at ${NGINX}: apt-get install -y nginx-light (or nginx).`);
  fx = await engineFixture({ LATCHKEY_FORWARD_AUTH_PROXIES: `edge-nginx=${PROXY_SECRET}` });
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  api = await startApiServer(["api", "scim"]);

  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-nginx-"));
  const [payments, scratch] = [await freePort(), await freePort()];
  [port, lonePort, wrongSecretPort] = [await freePort(), await freePort(), await freePort()];
  await backends.start("payments", payments);
  await backends.start("scratch", scratch);

  const cert = path.join(dir, "tls.crt");
  const key = path.join(dir, "tls.key");
  await promisify(execFile)("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=latchkey-test",
    "-keyout",
    key,
    "-out",
    cert,
  ]);

  const shipped = await readFile(SHIPPED, "utf8");
  const tls = { cert, key };
  const sites = [
    site(shipped, { port, host: "payments.staging.test", upstream: payments, secret: PROXY_SECRET, ...tls }),
    site(shipped, { port, host: "scratch.test", upstream: scratch, secret: PROXY_SECRET, ...tls }),
    site(shipped, { port: lonePort, host: "payments.staging.test", upstream: payments, secret: PROXY_SECRET, ...tls }),
    site(shipped, { port: wrongSecretPort, host: "payments.staging.test", upstream: payments, secret: randomBytes(24).toString("base64url"), ...tls }),
  ];
  // Temp paths inside the test's directory, so nginx needs nothing under /var/lib/nginx.
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${path.join(dir, t)};`).join("\n");
  await writeFile(
    path.join(dir, "nginx.conf"),
    `user root;\nworker_processes 1;\nevents { worker_connections 64; }\nhttp {\n${temp}\n  access_log ${path.join(dir, "access.log")};\n${sites.join("\n")}\n}\n`,
  );
  nginx = spawn(
    NGINX,
    ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-g", `daemon off; pid ${path.join(dir, "nginx.pid")}; error_log ${path.join(dir, "error.log")};`],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  nginx.stderr!.on("data", (chunk) => (stderr += chunk));
  await waitForNginx();
});

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((resolve) => nginx!.once("exit", resolve));
    nginx.kill("SIGTERM");
    await exited;
  }
  backends.close();
  await api?.close();
  await fx?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** An approved grant for alice and its credential, revealed. */
async function grant(overrides: Record<string, unknown> = {}): Promise<{ requestId: string; token: string }> {
  const request = await engine.createRequest(alice, "temporary-access", validInput(overrides));
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
  const { token } = await engine.revealCredential(alice, request.id);
  return { requestId: request.id, token };
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("nginx with deploy/nginx/latchkey-forward-auth.conf", () => {
  it("lets a valid credential through to its site, with Latchkey's identity and without the proxy secret", async () => {
    const { requestId, token } = await grant();
    const ok = await call(port, "payments.staging.test", "/v1/payments?limit=5", { token });
    expect(ok.status).toBe(200);
    expect(ok.seen).toMatchObject({ backend: "payments", method: "GET", url: "/v1/payments?limit=5" });
    expect(ok.seen!.headers).toMatchObject({ "x-latchkey-user": "alice@example.com", "x-latchkey-groups": "engineering", "x-latchkey-grant": requestId });
    expect(ok.seen!.headers["x-latchkey-proxy-secret"]).toBeUndefined();
    expect(JSON.stringify(ok.seen)).not.toContain(PROXY_SECRET);

    // The body goes to the upstream only; Latchkey is asked with headers alone.
    const post = await call(port, "payments.staging.test", "/v1/payments", {
      token,
      method: "POST",
      body: '{"amount":5}',
      headers: { "content-type": "application/json" },
    });
    expect(post.status).toBe(200);
    expect(post.seen).toMatchObject({ backend: "payments", method: "POST", body: '{"amount":5}' });
  });

  it("replaces or drops identity headers a client sends itself", async () => {
    const { requestId, token } = await grant();
    const forged = {
      "x-latchkey-user": "mallory@example.com",
      "x-latchkey-grant": "forged",
      "x-latchkey-groups": "platform-admins",
      "x-latchkey-role": "admin",
      "x-latchkey-target": "payments-api-production",
      "x-latchkey-proxy-secret": PROXY_SECRET,
    };
    const ok = await call(port, "payments.staging.test", "/", { token, headers: forged });
    expect(ok.status).toBe(200);
    expect(ok.seen!.headers).toMatchObject({ "x-latchkey-user": "alice@example.com", "x-latchkey-grant": requestId, "x-latchkey-groups": "engineering" });
    for (const name of ["x-latchkey-role", "x-latchkey-target", "x-latchkey-proxy-secret"]) expect(ok.seen!.headers[name], name).toBeUndefined();

    // Without a credential the forged headers get nobody anywhere: the shipped file answers 401, not a sign-in redirect.
    const none = await refused(port, "payments.staging.test", "/", { headers: forged });
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toMatch(/^Bearer/);
  });

  it("refuses a missing or forged credential (401) and a grant that does not cover the host or path (403)", async () => {
    const { token } = await grant();
    expect((await refused(port, "payments.staging.test", "/")).status).toBe(401);
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const kid = decodeProtectedHeader(token).kid;
    const forgeries = {
      "alg none": `${b64({ alg: "none", typ: "JWT", kid })}.${payload}.`,
      "tampered claims": `${header}.${b64({ ...decodeJwt(token), sub: "mallory@example.com" })}.${signature}`,
    };
    for (const [name, forgery] of Object.entries(forgeries)) {
      expect((await refused(port, "payments.staging.test", "/", { token: forgery })).status, name).toBe(401);
    }

    const { token: scratchToken } = await grant({ targetId: "scratch", durationMinutes: 5 });
    const wrongHost = await refused(port, "payments.staging.test", "/", { token: scratchToken });
    expect(wrongHost.status).toBe(403);
    expect(wrongHost.headers["content-type"]).toBe("text/plain");
    expect(wrongHost.text).toMatch(/no active grant for you on this site/);
    expect((await refused(port, "scratch.test", "/reports/daily", { token })).status).toBe(403);

    for (const uri of ["/reports", "/reports/daily", "/reports/daily?from=2026-01-01"]) {
      const ok = await call(port, "scratch.test", uri, { token: scratchToken });
      expect(ok.status, uri).toBe(200);
      expect(ok.seen, uri).toMatchObject({ backend: "scratch", url: uri });
      expect(ok.seen!.headers["x-latchkey-user"]).toBe("alice@example.com");
    }
    // nginx hands Latchkey the URI as sent, which is also what the upstream gets; Latchkey normalises it before matching.
    for (const uri of ["/admin", "/reportsx", "/reports/../admin", "/reports/%2e%2e/admin", "//reports/../admin"]) {
      expect((await refused(port, "scratch.test", uri, { token: scratchToken })).status, uri).toBe(403);
    }
  });

  it("checks a request against the server block's own name, whatever Host it names", async () => {
    // On a port where the payments block is the only (so default) server, a scratch.test
    // request lands in it: it must be judged as payments.staging.test, not as scratch.test.
    const { token: scratchToken } = await grant({ targetId: "scratch", durationMinutes: 5 });
    expect((await refused(lonePort, "scratch.test", "/reports/daily", { token: scratchToken })).status).toBe(403);
    const { token } = await grant();
    const ok = await call(lonePort, "payments.staging.test", "/", { token });
    expect(ok.status).toBe(200);
    expect(ok.seen).toMatchObject({ backend: "payments" });
  });

  it("refuses a credential the moment its grant is revoked or expires (nothing is cached)", async () => {
    const revoked = await grant();
    expect((await call(port, "payments.staging.test", "/", { token: revoked.token })).status).toBe(200);
    await engine.revokeGrant(alice, { requestId: revoked.requestId, reason: "done early" });
    expect((await refused(port, "payments.staging.test", "/", { token: revoked.token })).status).toBe(401);

    const expiring = await grant({ durationMinutes: 15 });
    expect((await call(port, "payments.staging.test", "/", { token: expiring.token })).status).toBe(200);
    await fx.db.accessRequest.update({ where: { id: expiring.requestId }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await engine.expireGrant(expiring.requestId)).toBe("expired");
    expect((await refused(port, "payments.staging.test", "/", { token: expiring.token })).status).toBe(401);
  });

  it("lets a portal session through when its person holds an active grant for the site", async () => {
    await grant();
    const session = randomBytes(16).toString("hex");
    await fx.db.session.create({ data: { sessionToken: session, userId: alice.id, expires: new Date(Date.now() + 3600_000) } });
    const ok = await call(port, "payments.staging.test", "/dashboard", { cookie: `theme=dark; next-auth.session-token=${session}` });
    expect(ok.status).toBe(200);
    expect(ok.seen).toMatchObject({ backend: "payments", url: "/dashboard" });
    expect(ok.seen!.headers["x-latchkey-user"]).toBe("alice@example.com");

    const bobSession = randomBytes(16).toString("hex");
    await fx.db.session.create({ data: { sessionToken: bobSession, userId: bob.id, expires: new Date(Date.now() + 3600_000) } });
    expect((await refused(port, "payments.staging.test", "/", { cookie: `__Secure-next-auth.session-token=${bobSession}` })).status).toBe(403);
    expect((await refused(port, "payments.staging.test", "/", { cookie: "next-auth.session-token=ended" })).status).toBe(401);
  });

  it("refuses every request (403) from an nginx whose proxy secret Latchkey does not know", async () => {
    const { token } = await grant();
    const session = randomBytes(16).toString("hex");
    await fx.db.session.create({ data: { sessionToken: session, userId: alice.id, expires: new Date(Date.now() + 3600_000) } });
    expect((await call(port, "payments.staging.test", "/", { token })).status).toBe(200);
    for (const options of [{ token }, { cookie: `next-auth.session-token=${session}` }, {}]) {
      expect((await refused(wrongSecretPort, "payments.staging.test", "/", options)).status).toBe(403);
    }
  });

  it("refuses a person's credential from the first request after the identity provider removes them from the group or deactivates them through SCIM", async () => {
    const dave = await fx.user("dave@example.com", ["platform-admins"]);
    const services = await import("@/lib/identity/service-identities");
    const tokens = await import("@/lib/identity/tokens");
    const directory = await services.createServiceIdentity(dave, {
      name: "identity-provider",
      description: "Okta and Entra provisioning",
      groups: ["engineering"],
      requestOnly: true,
    });
    const secret = (await tokens.createServiceToken(dave, directory.service!.id, { name: "scim", scopes: ["scim"], expiresInDays: 30 })).secret;
    const viaOkta = okta(api.url, secret);
    const viaEntra = entra(api.url, secret);
    const samId = (await viaOkta.createUser({ login: "sam@example.com", given: "Sam", family: "Example", oktaId: "00u1sam" })).body.id as string;
    const group = (await viaOkta.pushGroup("engineering")).body.id as string;
    const grantForSam = async () => {
      const user = await fx.db.user.findUniqueOrThrow({ where: { id: samId } });
      const sam: Principal = { id: user.id, email: user.email, groups: user.groups, roles: user.roles as Principal["roles"] };
      const request = await engine.createRequest(sam, "temporary-access", validInput());
      await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
      return (await engine.revealCredential(sam, request.id)).token;
    };

    // Okta removes Sam from the group: the next request through nginx is refused.
    await viaOkta.addMember(group, samId, "sam@example.com");
    const first = await grantForSam();
    expect((await call(port, "payments.staging.test", "/", { token: first })).status).toBe(200);
    expect((await viaOkta.removeMember(group, samId)).status).toBe(204);
    expect((await refused(port, "payments.staging.test", "/", { token: first })).status).toBe(401);

    // Entra puts Sam back, then disables him with its "False": the same.
    expect((await viaEntra.addMembers(group, [samId])).status).toBe(204);
    const second = await grantForSam();
    expect((await call(port, "payments.staging.test", "/", { token: second })).status).toBe(200);
    expect((await viaEntra.disable(samId)).status).toBe(200);
    expect((await refused(port, "payments.staging.test", "/", { token: second })).status).toBe(401);
    // Alice, in the same group from her sign-in, is untouched.
    expect((await call(port, "payments.staging.test", "/", { token: (await grant()).token })).status).toBe(200);
  });

  it("refuses the credential of a person the directory removed from the group that gave it, within the documented 2.5 s, when another process made the change", async () => {
    const nina = await fx.user("nina@example.com", ["engineering"]);
    const request = await engine.createRequest(nina, "temporary-access", validInput());
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
    const { token } = await engine.revealCredential(nina, request.id);
    // Let through, and so kept in this instance's memory.
    expect((await call(port, "payments.staging.test", "/", { token })).status).toBe(200);
    expect((await call(port, "payments.staging.test", "/", { token })).status).toBe(200);

    // The other process reports the moment it committed; the clock starts then, not when it exits.
    const other = spawn(
      path.join(process.cwd(), "node_modules/.bin/tsx"),
      ["--conditions=react-server", "tests/helpers/directory-change-process.ts", nina.id, "oncall"],
      { env: process.env, stdio: ["ignore", "pipe", "inherit"] },
    );
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      other.stdout!.on("data", (chunk) => {
        out += chunk;
        const done = out.split("\n").find((l) => l.startsWith("{"));
        if (done && out.includes("\n")) resolve(done);
      });
      other.once("exit", (code) => reject(new Error(`the directory change process exited (${code}) before committing`)));
    });
    const { committedAt, revokedGrants } = JSON.parse(line) as { committedAt: number; revokedGrants: number };
    expect(revokedGrants).toBe(1);
    await expect.poll(async () => (await call(port, "payments.staging.test", "/", { token })).status, { timeout: 2_500, interval: 50 }).toBe(401);
    const refusedAfter = Date.now() - committedAt;
    expect(refusedAfter).toBeLessThan(2_500);
    expect((await refused(port, "payments.staging.test", "/", { token })).status).toBe(401);
    if (other.exitCode === null) await new Promise((resolve) => other.once("exit", resolve));
    const ended = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, action: "grant.revoked" } });
    expect(ended.data).toMatchObject({ reason: "directory: removed from engineering" });
  });
});
