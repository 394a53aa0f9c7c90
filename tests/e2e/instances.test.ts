import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { PrismaClient } from "@prisma/client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startFakeAirflow, type FakeAirflow } from "../fakes/airflow";
import { sql } from "../helpers/database";
import { setTestEnvironment } from "../helpers/environment";
import { recordRuntimeApi, startHaproxy, type Haproxy, type RuntimeRecorder } from "../helpers/haproxy";
import { groupMembers, portalSecrets, startPortal, type PortalOptions, type PortalProcess } from "../helpers/portal-process";
import { freePort } from "../../scripts/support/ports";

/**
 * Two complete portal instances on one database, run as production runs them (`npm start`:
 * scripts/serve.ts --prod, each with its worker and `next start`), driven over the API at
 * once; then both killed with SIGKILL, process group and all, while their workers have calls
 * to outside systems in flight. The outside systems: a fake Airflow that keeps every run
 * and call (Latchkey's real client talks to it), and Debian's real HAProxy, reached through
 * a socket per instance that records each Runtime API command. Each instance signs in to
 * Airflow as a user of its own and has its own socket, so every call shows who made it.
 */

const admin = inject("pgAdminUrl");
const dbName = `latchkey_instances_${randomBytes(6).toString("hex")}`;
const databaseUrl = Object.assign(new URL(admin), { pathname: `/${dbName}` }).toString();
let dir: string;
let mapFile: string;
let airflow: FakeAirflow;
let haproxy: Haproxy | undefined;
const instances: { name: string; options: PortalOptions; runtime: RuntimeRecorder; process?: PortalProcess }[] = [];
let db: PrismaClient;
let lib: {
  runIdFor: (requestId: string) => string;
  showMap: (map: string) => Promise<Map<string, string>>;
  readMapFile: (file: string) => Promise<Map<string, string>>;
  walkChain: typeof import("@/lib/audit/verify").walkChain;
};
const tokens: Record<"alice" | "bob" | "lee", string> = { alice: "", bob: "", lee: "" };

const portal = (n: number) => instances[n % instances.length]!.process!;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-instances-"));
  mapFile = path.join(dir, "routes.map");
  await writeFile(mapFile, "");
  const airflowUser = { password: "airflow-pw", canWrite: true };
  airflow = await startFakeAirflow({
    version: "v2",
    dags: { settlement: { tasks: ["extract", "load"] } },
    users: { "latchkey-a": airflowUser, "latchkey-b": airflowUser },
  });
  const configuration = {
    ...portalSecrets(),
    LATCHKEY_POLICY_FILE: path.join(process.cwd(), "tests/fixtures/policy.yaml"),
    TEST_AIRFLOW_URL: airflow.url,
    TEST_AIRFLOW_PASSWORD: airflowUser.password,
    LATCHKEY_HAPROXY_MAP: mapFile,
  };
  // This process makes people and tokens through lib/ on the same database, with the same keys.
  setTestEnvironment(databaseUrl, configuration);
  await sql(admin, `CREATE DATABASE "${dbName}"`);

  for (const name of ["a", "b"]) {
    const runtime = await recordRuntimeApi(path.join(dir, `runtime-${name}.sock`), path.join(dir, "haproxy.sock"));
    instances.push({
      name,
      runtime,
      options: {
        databaseUrl,
        port: await freePort(),
        idpPort: await freePort(),
        dataDir: await mkdtemp(path.join(dir, `portal-${name}-`)),
        env: { ...configuration, TEST_AIRFLOW_USER: `latchkey-${name}`, LATCHKEY_HAPROXY_SOCKET: runtime.path },
        logFile: path.join(process.cwd(), `tests/.artifacts/instance-${name}.log`),
      },
    });
  }
  // Both start at once on the empty database: migrations, job queues and the first signing key race.
  await Promise.all(
    instances.map(async (instance) => {
      await writeFile(instance.options.logFile, "");
      instance.process = await startPortal(instance.options);
    }),
  );

  ({ db } = await import("@/lib/db"));
  const { createPersonalToken } = await import("@/lib/identity/tokens");
  const { rolesForGroups } = await import("@/lib/policy/evaluate");
  const { policy } = await import("@/lib/policy/current");
  const person = async (email: string, groups: string[], scopes: string[]) => {
    const roles = rolesForGroups(policy(), groups);
    const user = await db.user.create({ data: { email, name: email, groups, roles } });
    return (await createPersonalToken({ id: user.id, email, groups, roles }, { name: "instances test", scopes, expiresInDays: 1 })).secret;
  };
  tokens.alice = await person("alice@example.com", ["engineering"], ["requests:read", "requests:write", "credentials:read"]);
  tokens.bob = await person("bob@example.com", ["engineering-leads"], ["requests:read", "approvals:write"]);
  tokens.lee = await person("lee@example.com", ["engineering-leads"], ["requests:read", "approvals:write"]);

  // HAProxy starts once the portal has made its signing key: it loads the public half.
  const { publishedKeyPems } = await import("@/lib/credentials/keys");
  const { writeKeyDirectory } = await import("@/lib/credentials/key-files");
  await writeKeyDirectory(path.join(dir, "keys"), await publishedKeyPems());
  haproxy = await startHaproxy(dir, { keyDir: path.join(dir, "keys"), mapFile });
  const { runtimeApi } = await import("@/lib/integrations/haproxy/runtime-api");
  const { readMapFile } = await import("@/lib/integrations/haproxy/map-file");
  const { runIdFor } = await import("@/lib/workflows/trigger-dag/server");
  const { walkChain } = await import("@/lib/audit/verify");
  const direct = runtimeApi(haproxy.socket);
  lib = { runIdFor, showMap: (map) => direct.showMap(map), readMapFile, walkChain };
});

afterAll(async () => {
  await Promise.all(instances.map((i) => i.process?.stop().catch(() => undefined)));
  await haproxy?.stop();
  for (const i of instances) await i.runtime.close();
  await airflow?.close();
  const { disconnectDb } = await import("@/lib/db");
  await disconnectDb();
  await sql(admin, `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function api(instance: PortalProcess, token: string, method: string, route: string, body?: unknown) {
  const res = await fetch(`${instance.url}/api/v1${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

const triggerDag = (n: number) => ({
  workflowId: "trigger-dag",
  input: { targetId: "settlement-airflow", conf: JSON.stringify({ batch: n }), justification: `settlement batch ${n} again` },
});
const openRoute = (n: number, durationMinutes: number) => ({
  workflowId: "open-route",
  input: { targetId: "internal-app", durationMinutes, justification: `reach app1 for ticket ${n}` },
});

/** The trigger calls Airflow received for a request's run, with the instance that made each. */
const triggersOf = (requestId: string) =>
  airflow.requests
    .filter((r) => r.method === "POST" && r.path.endsWith("/dagRuns") && (r.body as { dag_run_id?: string }).dag_run_id === lib.runIdFor(requestId))
    .map((r) => ({ ...r, by: r.user?.replace("latchkey-", "") }));
const runsOf = (requestId: string) => [...airflow.runs.values()].filter((run) => run.dag_run_id === lib.runIdFor(requestId));
/** Runtime API commands of one kind ("add map", "del map") for one credential, as the instance that sent each. */
const commandsFor = (verb: "add" | "del", jti: string) =>
  instances.flatMap((i) => i.runtime.commands.filter((c) => c.startsWith(`${verb} map `) && c.split(" ")[3] === jti).map(() => i.name));
/** Outside systems that answer late (what is asked takes effect at once): Airflow to triggers, HAProxy to the commands matching. */
function slowOutsideSystems(triggerMs: number, commands: RegExp | null, commandMs = 0) {
  airflow.holdTriggerAnswers(triggerMs);
  for (const i of instances) i.runtime.holdAnswers(commands, commandMs);
}

/** How many audit events of this action each request has, in the order given. */
async function eventsPer(action: string, ids: string[]): Promise<number[]> {
  const rows = await db.auditEvent.groupBy({ by: ["requestId"], where: { action, requestId: { in: ids } }, _count: { _all: true } });
  return ids.map((id) => rows.find((r) => r.requestId === id)?._count._all ?? 0);
}

async function jtiOf(requestId: string): Promise<string> {
  const credentials = await db.credential.findMany({ where: { requestId } });
  expect(credentials).toHaveLength(1);
  return credentials[0]!.id;
}

describe("two portal instances, each with its worker, on one database", () => {
  const N = 8;
  let triggers: string[] = [];
  let routes: string[] = [];

  it("started together on an empty database: one schema, one set of queues, one signing key", async () => {
    expect(instances.map((i) => i.process!.output())).toEqual([expect.stringContaining("worker started"), expect.stringContaining("worker started")]);
    expect(await db.signingKey.count()).toBe(1);
    expect(await db.auditEvent.count({ where: { action: "key.created" } })).toBe(1);
    const { QUEUES } = await import("@/lib/jobs/queue");
    const queues = await sql(databaseUrl, `SELECT name FROM pgboss.queue`);
    expect(queues.rows.map((r: { name: string }) => r.name)).toEqual(expect.arrayContaining(Object.values(QUEUES)));
    for (const instance of instances) expect((await fetch(`${instance.process!.url}/api/ready`)).status).toBe(200);
  });

  it("carry out each request once, whichever instance took it and whichever approved it", async () => {
    // A little slow, so that one worker cannot drain the queue before the other looks.
    slowOutsideSystems(300, /^(add|del) map /, 300);
    // Alice asks through both instances at once: DAG runs, and one-minute routes through HAProxy.
    const asks = [...Array.from({ length: N }, (_, n) => triggerDag(n)), ...Array.from({ length: N }, (_, n) => openRoute(n, 1))];
    const created = await Promise.all(asks.map((ask, n) => api(portal(n), tokens.alice, "POST", "/requests", ask)));
    expect(created.map((c) => c.status)).toEqual(asks.map(() => 201));
    const ids = created.map((c) => String(c.body!.id));
    triggers = ids.slice(0, N);
    routes = ids.slice(N);

    // Bob approves each through one instance while Lee approves it through the other: one decides, the other is told it is decided.
    const decisions = await Promise.all(
      ids.map((id, n) =>
        Promise.all([
          api(portal(n), tokens.bob, "POST", `/requests/${id}/approve`, { comment: "go" }),
          api(portal(n + 1), tokens.lee, "POST", `/requests/${id}/approve`, { comment: "go" }),
        ]),
      ),
    );
    expect(decisions.map((pair) => pair.map((d) => d.status).sort())).toEqual(ids.map(() => [200, 409]));
    expect(await db.approval.count({ where: { requestId: { in: ids } } })).toBe(ids.length);

    await until(
      async () =>
        (await db.accessRequest.count({ where: { id: { in: triggers }, externalRef: { not: null } } })) === N &&
        (await db.accessRequest.count({ where: { id: { in: routes }, status: "active" } })) === N,
      60_000,
      "every run started and every route open",
    );
    // Airflow: one trigger call and one run per request, under the run id derived from the request.
    expect(triggers.map((id) => triggersOf(id).length)).toEqual(triggers.map(() => 1));
    expect(new Set(triggers.map((id) => triggersOf(id)[0]!.by))).toEqual(new Set(["a", "b"]));
    expect(triggers.map((id) => runsOf(id).length)).toEqual(triggers.map(() => 1));
    expect(airflow.runs.size).toBe(N);
    for (const run of airflow.runs.values()) run.state = "success";
    await until(
      async () => (await db.accessRequest.count({ where: { id: { in: triggers }, status: "completed" } })) === N,
      30_000,
      "every run followed to its end",
    );

    // HAProxy: one credential per route, added to the map once, in the running proxy and in its map file.
    const jtis = await Promise.all(routes.map(jtiOf));
    expect(jtis.map((jti) => commandsFor("add", jti).length)).toEqual(jtis.map(() => 1));
    expect(new Set(jtis.flatMap((jti) => commandsFor("add", jti)))).toEqual(new Set(["a", "b"]));
    const live = await lib.showMap(mapFile);
    const file = await lib.readMapFile(mapFile);
    expect(jtis.map((jti) => [live.get(jti), file.get(jti)])).toEqual(jtis.map(() => ["app1", "app1"]));

    expect(await eventsPer("request.approved", ids)).toEqual(ids.map(() => 1));
    expect(await eventsPer("integration.performed", ids)).toEqual(ids.map(() => 1));
    expect(await eventsPer("grant.activated", routes)).toEqual(routes.map(() => 1));
    expect(await eventsPer("request.completed", triggers)).toEqual(triggers.map(() => 1));
    expect(await db.auditEvent.count({ where: { requestId: { in: ids }, action: { in: ["request.failed", "request.execution_retry"] } } })).toBe(0);
  });

  it("revoke each route once when it runs out, both workers racing for it", async () => {
    await until(
      async () => (await db.accessRequest.count({ where: { id: { in: routes }, status: "expired", undoPending: false } })) === N,
      120_000,
      "every route expired and removed",
    );
    const jtis = await Promise.all(routes.map(jtiOf));
    expect(jtis.map((jti) => commandsFor("del", jti).length)).toEqual(jtis.map(() => 1));
    expect(new Set(jtis.flatMap((jti) => commandsFor("del", jti)))).toEqual(new Set(["a", "b"]));
    const live = await lib.showMap(mapFile);
    const file = await lib.readMapFile(mapFile);
    expect(jtis.filter((jti) => live.has(jti) || file.has(jti))).toEqual([]);
    expect(await eventsPer("grant.expired", routes)).toEqual(routes.map(() => 1));
    expect(await eventsPer("integration.undone", routes)).toEqual(routes.map(() => 1));
    expect(await db.credential.count({ where: { requestId: { in: routes }, revokedAt: null } })).toBe(0);
  });

  it("leave an audit chain that verifies, though both wrote to it at once", async () => {
    const report = await lib.walkChain();
    expect(report).toMatchObject({ ok: true, firstBadSeq: null, problem: null });
    expect(report.eventsChecked).toBe(await db.auditEvent.count());
  });
});

describe("both instances killed (SIGKILL, whole process groups) while their workers call outside systems", () => {
  let dagRequest: string;
  let routeRequest: string;
  let jti: string;

  it("leaves the executions started and unrecorded: a DAG run Latchkey never heard back about, a route HAProxy has but Latchkey does not", async () => {
    // Airflow creates the run but answers 10 s later; HAProxy adds the route but answers 4 s later (within the callers' time-outs).
    slowOutsideSystems(10_000, /^add map /, 4_000);
    dagRequest = String((await api(portal(0), tokens.alice, "POST", "/requests", triggerDag(100))).body!.id);
    routeRequest = String((await api(portal(1), tokens.alice, "POST", "/requests", openRoute(100, 30))).body!.id);
    expect((await api(portal(1), tokens.bob, "POST", `/requests/${dagRequest}/approve`, { comment: "go" })).status).toBe(200);
    await until(() => triggersOf(dagRequest).length === 1, 15_000, "the trigger reached Airflow");
    // The worker holding the trigger call is busy, so the other instance's worker takes the route.
    expect((await api(portal(0), tokens.lee, "POST", `/requests/${routeRequest}/approve`, { comment: "go" })).status).toBe(200);
    await until(async () => (await db.credential.count({ where: { requestId: routeRequest } })) === 1, 15_000, "the route's credential issued");
    jti = await jtiOf(routeRequest);
    await until(() => commandsFor("add", jti).length === 1, 15_000, "the route reached HAProxy");
    expect(triggersOf(dagRequest)[0]!.status).toBeUndefined(); // still waiting for its answer
    // One call in flight in each instance's worker.
    expect(new Set([triggersOf(dagRequest)[0]!.by, ...commandsFor("add", jti)])).toEqual(new Set(["a", "b"]));

    const pids = instances.map((i) => i.process!.pid);
    await Promise.all(instances.map((i) => i.process!.kill()));
    expect(pids.flatMap(groupMembers)).toEqual([]);
    slowOutsideSystems(0, null);

    expect(await db.accessRequest.findUniqueOrThrow({ where: { id: dagRequest } })).toMatchObject({ status: "executing", externalRef: null });
    expect(runsOf(dagRequest)).toHaveLength(1);
    expect(await db.accessRequest.findUniqueOrThrow({ where: { id: routeRequest } })).toMatchObject({ status: "executing", activatedAt: null });
    expect((await lib.showMap(mapFile)).get(jti)).toBe("app1");
    // The map file is written before HAProxy is told (so a reload never loses a route): it holds the route too, which the restart must close or keep exactly once.
    expect((await lib.readMapFile(mapFile)).has(jti)).toBe(true);
    expect(await eventsPer("integration.performed", [dagRequest, routeRequest])).toEqual([0, 0]);
  });

  it("after a restart finishes each execution exactly once, with nothing left half-applied", async () => {
    // The sweep takes up an execution whose worker died once it has not moved for a minute
    // (younger ones are left to their own job). The portal stays down that long, so the
    // first sweep of each restarted worker finds both; the two race for them.
    await until(
      async () =>
        (
          await sql(databaseUrl, `SELECT count(*)::int AS n FROM "AccessRequest" WHERE id = ANY($1) AND "updatedAt" < now() - interval '61 seconds'`, [
            [dagRequest, routeRequest],
          ])
        ).rows[0].n === 2,
      90_000,
      "a minute without progress",
    );
    await Promise.all(instances.map(async (i) => (i.process = await startPortal(i.options))));

    await until(
      async () => (await db.accessRequest.findUniqueOrThrow({ where: { id: dagRequest } })).externalRef !== null,
      30_000,
      "the run recorded after the restart",
    );
    for (const run of runsOf(dagRequest)) run.state = "success";
    await until(
      async () =>
        (await db.accessRequest.findUniqueOrThrow({ where: { id: dagRequest } })).status === "completed" &&
        (await db.accessRequest.findUniqueOrThrow({ where: { id: routeRequest } })).status === "active",
      30_000,
      "the run completed and the route active",
    );

    // Airflow saw one run. The retry sent the same run id and was told it exists (409), so it adopted that run.
    expect(runsOf(dagRequest)).toHaveLength(1);
    expect(triggersOf(dagRequest)).toHaveLength(2);
    expect(triggersOf(dagRequest)[1]!.status).toBe(409);
    const performed = await db.auditEvent.findMany({
      where: { requestId: { in: [dagRequest, routeRequest] }, action: "integration.performed" },
      select: { requestId: true, data: true },
    });
    expect(performed).toHaveLength(2);
    expect(performed.find((e) => e.requestId === dagRequest)!.data).toMatchObject({ runId: lib.runIdFor(dagRequest), created: "false" });
    expect(await db.accessRequest.findUniqueOrThrow({ where: { id: dagRequest } })).toMatchObject({
      externalRef: `settlement/${lib.runIdFor(dagRequest)}`,
      failureReason: null,
      undoPending: false,
    });
    expect(await eventsPer("request.completed", [dagRequest])).toEqual([1]);

    // The route: the credential issued before the crash is the one in force, added to HAProxy once, now also in the map file.
    expect(await jtiOf(routeRequest)).toBe(jti);
    expect(performed.find((e) => e.requestId === routeRequest)!.data).toMatchObject({ jti });
    expect(commandsFor("add", jti)).toHaveLength(1);
    expect((await lib.showMap(mapFile)).get(jti)).toBe("app1");
    expect((await lib.readMapFile(mapFile)).get(jti)).toBe("app1");
    expect(await db.accessRequest.findUniqueOrThrow({ where: { id: routeRequest } })).toMatchObject({ failureReason: null, undoPending: false });
    expect(await eventsPer("grant.activated", [routeRequest])).toEqual([1]);
    expect(
      await db.auditEvent.count({
        where: { requestId: { in: [dagRequest, routeRequest] }, action: { in: ["request.failed", "request.execution_retry", "integration.undone"] } },
      }),
    ).toBe(0);

    // And the grant works: Alice's credential reaches app1 through HAProxy.
    const { body } = await api(portal(1), tokens.alice, "POST", `/requests/${routeRequest}/credential`);
    const res = await fetch(`${haproxy!.url}/app1/orders`, { headers: { authorization: `Bearer ${String(body!.credential)}` } });
    expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: "app1 for alice@example.com" });
    expect((await lib.walkChain()).ok).toBe(true);
  });
});
