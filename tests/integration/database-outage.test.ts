import { sql } from "../helpers/database";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

/**
 * The database connection is lost while requests are in flight, then comes back: callers
 * get a clear message, nothing is half-written, and the portal recovers by itself.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let token: string;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_RATE_LIMIT_TOKEN: "100000" });
  const { createPersonalToken } = await import("@/lib/identity/tokens");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  token = (await createPersonalToken(alice, { name: "outage", scopes: ["requests:read", "requests:write"], expiresInDays: 1 })).secret;
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

async function cutConnections() {
  const name = new URL(fx.url).pathname.slice(1);
  await sql(fx.url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [name]);
}

const create = (n: number) =>
  fetch(`${api.url}/api/v1/requests`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ workflowId: "temporary-access", input: validInput({ justification: `outage drill request ${n}` }) }),
  });

describe("losing the database connection", () => {
  it("fails requests in flight with a clear message, writes nothing by halves, and recovers without a restart", async () => {
    // Fire requests and cut every connection while they run, until a cut lands mid-flight.
    let cutMidFlight = false;
    for (let round = 0; round < 5 && !cutMidFlight; round++) {
      const before = await fx.db.accessRequest.count();
      const inFlight = Array.from({ length: 20 }, (_, n) => create(round * 100 + n));
      await new Promise((r) => setTimeout(r, 15));
      await cutConnections();
      const responses = await Promise.all(inFlight);
      const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ id?: string; code?: string; detail?: string }>));
      const created = bodies.filter((_, i) => responses[i]!.status === 201);
      for (const [i, body] of bodies.entries()) {
        const status = responses[i]!.status;
        expect([201, 503], JSON.stringify(body)).toContain(status);
        if (status === 503) {
          cutMidFlight = true;
          expect({ code: body.code, detail: body.detail }).toEqual({
            code: "unavailable",
            detail:
              "The database connection was lost. Nothing is half-saved, but if you were making a change, check whether it went through before trying again.",
          });
          expect(responses[i]!.headers.get("retry-after")).toBe("2");
        }
      }
      // Nothing is half-written: every request that exists is whole (its row and its one audit
      // event). A connection cut while COMMIT is on its way may have saved a change whose caller
      // was told the connection was lost; the message says to check, and such a change is whole too.
      await new Promise((r) => setTimeout(r, 300));
      const after = await fx.db.accessRequest.count();
      expect(after).toBeGreaterThanOrEqual(before + created.length);
      expect(after).toBeLessThanOrEqual(before + created.length + (bodies.length - created.length));
      for (const body of created) expect(await fx.db.auditEvent.count({ where: { requestId: body.id!, action: "request.created" } })).toBe(1);
      const rows = await fx.db.accessRequest.findMany({ select: { id: true } });
      for (const { id } of rows) expect(await fx.db.auditEvent.count({ where: { requestId: id, action: "request.created" } }), id).toBe(1);
    }
    expect(cutMidFlight).toBe(true);
    // Back again, without a restart.
    let recovered = 0;
    for (let i = 0; i < 20 && recovered === 0; i++) {
      if ((await create(100 + i)).status === 201) recovered += 1;
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(recovered).toBe(1);
    const { walkChain } = await import("@/lib/audit/verify");
    expect((await walkChain()).ok).toBe(true);
  });
});
