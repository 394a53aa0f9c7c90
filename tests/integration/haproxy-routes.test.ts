import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { decodeJwt, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/support/ports";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { recordRuntimeApi, type RuntimeRecorder } from "../helpers/haproxy";
import { haproxyRoutes, type RouteStore } from "@/lib/integrations/haproxy/routes";
import { runtimeApi, type ProxyRuntime } from "@/lib/integrations/haproxy/runtime-api";

/** Debian's real HAProxy 2.6 with the example configuration from deploy/haproxy/. */
const HAPROXY = "/usr/sbin/haproxy";
let fx: Awaited<ReturnType<typeof engineFixture>>;
let dir: string;
let proxy: ChildProcess;
let proxyUrl: string;
let mapFile: string;
let runtime: ProxyRuntime;
let routes: RouteStore;
let recorder: RuntimeRecorder;
const backends: http.Server[] = [];
let token: string;
let jti: string;

function backend(name: string, port: number) {
  const server = http.createServer((req, res) => res.end(`${name} for ${req.headers["x-latchkey-subject"]}`));
  backends.push(server);
  return new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
}

async function call(route: string, bearer?: string) {
  const res = await fetch(`${proxyUrl}${route}`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  if (!existsSync(HAPROXY)) throw new Error(`HAProxy is not installed at ${HAPROXY}: apt-get install -y haproxy (npm test does this as root).`);
  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-haproxy-"));
  // The "Open a route" workflow finds HAProxy through these (read when configuration is first loaded).
  // Through a recorder in front of HAProxy's socket, so a test can hold HAProxy's answers back.
  process.env.LATCHKEY_HAPROXY_SOCKET = path.join(dir, "recorder.sock");
  process.env.LATCHKEY_HAPROXY_MAP = path.join(dir, "routes.map");
  fx = await engineFixture();
  const [port, app1, app2] = [await freePort(), await freePort(), await freePort()];
  const { publishedKeyPems } = await import("@/lib/credentials/keys");
  const { writeKeyDirectory } = await import("@/lib/credentials/key-files");
  await writeKeyDirectory(path.join(dir, "keys"), await publishedKeyPems());
  mapFile = path.join(dir, "routes.map");
  await writeFile(mapFile, "");
  const socket = path.join(dir, "admin.sock");
  const config = (await readFile("deploy/haproxy/haproxy.cfg", "utf8"))
    .replaceAll("/etc/haproxy/latchkey-keys", path.join(dir, "keys"))
    .replaceAll("/etc/haproxy/latchkey-routes.map", mapFile)
    .replaceAll("/run/haproxy/latchkey.sock", socket)
    .replace("127.0.0.1:8080", `127.0.0.1:${port}`)
    .replace("127.0.0.1:9001", `127.0.0.1:${app1}`)
    .replace("127.0.0.1:9002", `127.0.0.1:${app2}`);
  await writeFile(path.join(dir, "haproxy.cfg"), config);
  await backend("app1", app1);
  await backend("app2", app2);
  proxy = spawn(HAPROXY, ["-f", path.join(dir, "haproxy.cfg"), "-db"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proxy.stderr!.on("data", (c) => (stderr += c));
  proxyUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
  if (!existsSync(socket)) throw new Error(`HAProxy did not start:\n${stderr}`);
  recorder = await recordRuntimeApi(path.join(dir, "recorder.sock"), socket);
  runtime = runtimeApi(socket);
  routes = haproxyRoutes(runtime, mapFile);

  // A real credential, issued by the engine on approval.
  const engine = await import("@/lib/approvals/engine");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  const request = await engine.createRequest(alice, "temporary-access", validInput());
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
  token = (await engine.revealCredential(alice, request.id)).token;
  jti = String(decodeJwt(token).jti);
});

afterAll(async () => {
  proxy?.kill("SIGTERM");
  await recorder?.close();
  for (const b of backends) b.close();
  await fx?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function signWithLatchkeyKey(claims: Record<string, unknown>, expiresAt: number) {
  const { db } = await import("@/lib/db");
  const { activeSigningKey } = await import("@/lib/credentials/keys");
  const key = await db.$transaction((tx) => activeSigningKey(tx));
  return new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: key.kid }).setExpirationTime(expiresAt).sign(key.privateKey);
}

describe("HAProxy verifies Latchkey's credentials and routes by the map", () => {
  it("a valid credential with an open route reaches its backend, with the identity from the token", async () => {
    await routes.open(jti, "app1");
    expect((await runtime.showMap(mapFile)).get(jti)).toBe("app1");
    expect(await readFile(mapFile, "utf8")).toContain(`${jti} app1`);
    expect(await call("/app1/orders", token)).toEqual({ status: 200, body: "app1 for alice@example.com" });
  });

  it("refuses no token, a forged token, another key's token, alg none, and an expired token", async () => {
    expect((await call("/app1/")).status).toBe(401);
    const [header, payload, signature] = token.split(".");
    const forgedPayload = Buffer.from(JSON.stringify({ ...decodeJwt(token), sub: "mallory@example.com" })).toString("base64url");
    expect((await call("/app1/", `${header}.${forgedPayload}.${signature}`)).status).toBe(401);
    const other = await generateKeyPair("RS256");
    const foreign = await new SignJWT({ ...decodeJwt(token) }).setProtectedHeader({ alg: "RS256" }).sign(other.privateKey);
    expect((await call("/app1/", foreign)).status).toBe(401);
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`;
    expect((await call("/app1/", none)).status).toBe(401);
    const expired = await signWithLatchkeyKey({ ...decodeJwt(token), exp: undefined }, Math.floor(Date.now() / 1000) - 5);
    expect(await call("/app1/", expired)).toEqual({ status: 401, body: "expired credential" });
  });

  it("refuses a credential for another backend, and one whose route was closed", async () => {
    expect(await call("/app2/", token)).toEqual({ status: 403, body: "credential not valid for this backend" });
    await routes.close(jti);
    expect(await call("/app1/", token)).toEqual({ status: 403, body: "no open route for this credential" });
    expect((await runtime.showMap(mapFile)).has(jti)).toBe(false);
    expect(await readFile(mapFile, "utf8")).not.toContain(jti);
    await routes.close(jti); // idempotent
  });

  it("the runtime client refuses values that could inject commands, and reports an unreachable socket", async () => {
    await expect(runtime.addMapEntry(mapFile, "x\nshutdown", "app1")).rejects.toThrow(/cannot be sent to HAProxy/);
    await expect(runtimeApi(path.join(dir, "missing.sock")).showMap(mapFile)).rejects.toThrow(/unreachable/);
  });
});

describe("the Open a route workflow", () => {
  /** Alice asks to open a route and Bob approves it: the request waits for the worker. */
  async function approvedRoute(justification: string) {
    const engine = await import("@/lib/approvals/engine");
    const alice = await fx.user("alice@example.com", ["engineering"]);
    const bob = await fx.user("bob@example.com", ["engineering-leads"]);
    const request = await engine.createRequest(alice, "open-route", { targetId: "internal-app", durationMinutes: 30, justification });
    expect((await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" })).status).toBe("executing");
    return { engine, alice, bob, request };
  }

  it("approval opens a route for a new credential; expiry closes it in HAProxy and in the map file", async () => {
    const { engine, alice, request } = await approvedRoute("Debug the admin console for OPS-12");
    expect(await engine.performQueued(request.id, false)).toBe("active");
    const { token: routeToken } = await engine.revealCredential(alice, request.id);
    const routeJti = String(decodeJwt(routeToken).jti);
    expect((await runtime.showMap(mapFile)).get(routeJti)).toBe("app1");
    expect(await call("/app1/status", routeToken)).toEqual({ status: 200, body: "app1 for alice@example.com" });

    const active = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
    expect(await engine.expireGrant(request.id, new Date(active.expiresAt!.getTime() + 1000))).toBe("expired");
    expect(await engine.undoQueued(request.id)).toBe("undone");
    expect((await runtime.showMap(mapFile)).has(routeJti)).toBe(false);
    expect(await readFile(mapFile, "utf8")).not.toContain(routeJti);
    expect(await call("/app1/status", routeToken)).toEqual({ status: 403, body: "no open route for this credential" });
    expect((await fx.db.credential.findUniqueOrThrow({ where: { requestId: request.id } })).revokedAt).not.toBeNull();
  });

  it("an extension, once its own route is open, replaces the grant it extends: the old route closes", async () => {
    const { engine, alice, bob, request: parent } = await approvedRoute("Debug the admin console for OPS-14");
    expect(await engine.performQueued(parent.id, false)).toBe("active");
    const oldJti = String(decodeJwt((await engine.revealCredential(alice, parent.id)).token).jti);

    const extension = await engine.requestExtension(alice, { requestId: parent.id, durationMinutes: 60, justification: "still debugging OPS-14" });
    await engine.decide(bob, { requestId: extension.id, decision: "approve", comment: "" });
    // Until the extension's route is open, the old grant stays.
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: parent.id } })).status).toBe("active");
    expect(await engine.performQueued(extension.id, false)).toBe("active");
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: parent.id } })).toMatchObject({ status: "revoked", undoPending: true });
    const { token: newToken } = await engine.revealCredential(alice, extension.id);
    expect(await engine.undoQueued(parent.id)).toBe("undone");
    const map = await runtime.showMap(mapFile);
    expect(map.has(oldJti)).toBe(false);
    expect(map.get(String(decodeJwt(newToken).jti))).toBe("app1");
    expect(await call("/app1/status", newToken)).toEqual({ status: 200, body: "app1 for alice@example.com" });
    const revoked = await fx.db.auditEvent.findFirst({ where: { requestId: parent.id, action: "grant.revoked" } });
    expect(revoked?.data).toMatchObject({ reason: `replaced by extension ${extension.id}` });
  });

  it("a person the directory removes while their route is being set up gets no route: the request fails with the reason and the worker opens nothing", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { applyDirectoryChange } = await import("@/lib/identity/directory");
    const erin = await fx.user("erin.route@example.com", ["engineering"]);
    const bob = await fx.user("bob@example.com", ["engineering-leads"]);
    const request = await engine.createRequest(erin, "open-route", {
      targetId: "internal-app",
      durationMinutes: 30,
      justification: "Debug the admin console for OPS-21",
    });
    expect((await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" })).status).toBe("executing");
    const before = await runtime.showMap(mapFile);

    expect(await applyDirectoryChange({ userId: erin.id, groups: [], source: "scim" })).toMatchObject({ revokedGrants: 0, cancelledRequests: 1 });
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).toMatchObject({
      status: "failed",
      failureReason: "directory: removed from engineering",
    });
    const failed = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, action: "request.failed" } });
    expect(failed).toMatchObject({ fromStatus: "executing", toStatus: "failed", data: { reason: "directory: removed from engineering" } });

    // The worker's job, delivered afterwards, opens nothing; the clean-up is harmless.
    expect(await engine.performQueued(request.id, false)).toBe("skipped");
    expect(await engine.undoQueued(request.id)).toBe("undone");
    expect(await runtime.showMap(mapFile)).toEqual(before);
    await expect(engine.revealCredential(erin, request.id)).rejects.toThrow();
    // The second time changes nothing.
    expect(await applyDirectoryChange({ userId: erin.id, groups: [], source: "scim" })).toMatchObject({ revokedGrants: 0, cancelledRequests: 0 });
  });

  it("the worker re-checks the requester under the request's lock: one deactivated after approval (the directory's sweep not there yet) gets no route", async () => {
    const engine = await import("@/lib/approvals/engine");
    const fay = await fx.user("fay.route@example.com", ["engineering"]);
    const bob = await fx.user("bob@example.com", ["engineering-leads"]);
    const request = await engine.createRequest(fay, "open-route", {
      targetId: "internal-app",
      durationMinutes: 30,
      justification: "Debug the admin console for OPS-22",
    });
    expect((await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" })).status).toBe("executing");
    const before = await runtime.showMap(mapFile);
    // The directory change's first step has committed; its sweep of her requests has not reached this one.
    await fx.db.user.update({ where: { id: fay.id }, data: { active: false } });

    expect(await engine.performQueued(request.id, false)).toBe("failed");
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).toMatchObject({
      status: "failed",
      failureReason: "directory: the person was deactivated",
      activatedAt: null,
    });
    expect(await runtime.showMap(mapFile)).toEqual(before);
    expect(await fx.db.auditEvent.count({ where: { requestId: request.id, action: { in: ["integration.performed", "grant.activated"] } } })).toBe(0);
    // A second delivery of the job does nothing either.
    expect(await engine.performQueued(request.id, false)).toBe("skipped");
    expect(await runtime.showMap(mapFile)).toEqual(before);
  });

  it("a person removed while the worker is opening their route: the worker finishes, finds the request failed, and its opening is undone", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { applyDirectoryChange } = await import("@/lib/identity/directory");
    const gus = await fx.user("gus.route@example.com", ["engineering"]);
    const bob = await fx.user("bob@example.com", ["engineering-leads"]);
    const request = await engine.createRequest(gus, "open-route", {
      targetId: "internal-app",
      durationMinutes: 30,
      justification: "Debug the admin console for OPS-23",
    });
    expect((await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" })).status).toBe("executing");
    const { readMapFile } = await import("@/lib/integrations/haproxy/map-file");
    const before = await runtime.showMap(mapFile);
    const fileBefore = await readMapFile(mapFile);
    const sent = recorder.commands.length;
    // HAProxy adds the route at once; its answer reaches the worker only once the directory has acted
    // (held for at most 4.5 s, under the runtime client's 5 s timeout; "show map" before it is not held).
    recorder.holdAnswers(/^(add|set) map/, 4500);
    const performing = engine.performQueued(request.id, false);
    try {
      // The recorder logs a command before HAProxy has it, so wait for HAProxy's map itself.
      await expect.poll(async () => (await runtime.showMap(mapFile)).size, { timeout: 20_000, interval: 50 }).toBe(before.size + 1);
      expect(recorder.commands.slice(sent).some((c) => /^(set|add) map/.test(c))).toBe(true);
      expect(await applyDirectoryChange({ userId: gus.id, active: false, source: "scim" })).toMatchObject({ cancelledRequests: 1 });
    } finally {
      recorder.holdAnswers(null);
      recorder.releaseHeld();
    }
    expect(await performing).toBe("failed");
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).toMatchObject({
      status: "failed",
      failureReason: "directory: deactivated",
      undoPending: true,
      activatedAt: null,
    });
    expect(
      await fx.db.auditEvent.count({ where: { requestId: request.id, action: "integration.performed", data: { path: ["afterEnd"], equals: "true" } } }),
    ).toBe(1);
    expect(await engine.undoQueued(request.id)).toBe("undone");
    expect(await runtime.showMap(mapFile)).toEqual(before);
    expect(await readMapFile(mapFile)).toEqual(fileBefore);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).undoPending).toBe(false);
  });

  it("when HAProxy is unreachable the attempt is retried with the error shown, then fails and cleans up", async () => {
    const { engine, request } = await approvedRoute("Debug the admin console for OPS-13");
    proxy.kill("SIGTERM");
    await new Promise((r) => proxy.once("exit", r));
    await recorder.close(); // nothing answers at the socket Latchkey was given
    await expect(engine.performQueued(request.id, false)).rejects.toThrow(/unreachable/);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).failureReason).toMatch(
      /^Last attempt failed, retrying: HAProxy runtime API unreachable/,
    );
    expect(await engine.performQueued(request.id, true)).toBe("failed");
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).undoPending).toBe(true);
  });
});
