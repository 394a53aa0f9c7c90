// A workflow whose outside system is not configured must be refused before anyone approves
// it, by the server as well as in the catalog, with the reason in words.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let alice: Principal, dave: Principal;
const trigger = { targetId: "settlement-airflow", conf: "{}", justification: "Re-run settlement after INC-9" };

beforeAll(async () => {
  fx = await engineFixture({
    TEST_AIRFLOW_URL: "",
    TEST_AIRFLOW_USER: "",
    TEST_AIRFLOW_PASSWORD: "",
    TEST_LEDGER_DB_URL: "postgresql://ledger:unused@127.0.0.1:1/ledger",
  });
  alice = await fx.user("alice@example.com", ["engineering"]);
  dave = await fx.user("dave@example.com", ["engineering", "platform-admins"]);
});
afterAll(() => fx?.close());

describe("an unconfigured integration", () => {
  it("is shown as unavailable in the catalog, with the variables named to admins only", async () => {
    const { workflowsFor } = await import("@/lib/workflows/catalog");
    const forAlice = workflowsFor(alice)
      .find((w) => w.id === "trigger-dag")!
      .targets.find((t) => t.id === "settlement-airflow")!;
    expect(forAlice).toMatchObject({
      available: false,
      unavailableReason: "Airflow is not configured on this portal yet. It cannot be requested until an admin sets it up.",
    });
    const forDave = workflowsFor(dave)
      .find((w) => w.id === "trigger-dag")!
      .targets.find((t) => t.id === "settlement-airflow")!;
    expect(forDave.unavailableReason).toBe(
      "Airflow is not configured on this portal yet. Set TEST_AIRFLOW_URL, TEST_AIRFLOW_USER, TEST_AIRFLOW_PASSWORD and restart the portal.",
    );
    // Configured ones stay available.
    expect(workflowsFor(alice).find((w) => w.id === "database-access")!.targets[0]).toMatchObject({ available: true, unavailableReason: null });
    expect(
      workflowsFor(alice)
        .find((w) => w.id === "temporary-access")!
        .targets.every((t) => t.available),
    ).toBe(true);
  });

  it("cannot be requested: the server refuses with the reason and writes nothing, also the second time", async () => {
    const engine = await import("@/lib/approvals/engine");
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(engine.createRequest(alice, "trigger-dag", trigger)).rejects.toMatchObject({
        code: "conflict",
        message:
          "Trigger a DAG run on settlement DAG (Airflow) is unavailable: Airflow is not configured on this portal yet. It cannot be requested until an admin sets it up.",
      });
    }
    await expect(engine.breakGlass(alice, "trigger-dag", trigger, "production is down")).rejects.toMatchObject({
      code: expect.stringMatching(/conflict|forbidden/),
    });
    // A target without Airflow in the policy at all is refused too, whatever the environment.
    await expect(
      engine.createRequest(alice, "restart-job", {
        targetId: "settlement-dag",
        runId: "r1",
        scope: ["failed-tasks"],
        justification: "Restart the failed loaders",
      }),
    ).rejects.toMatchObject({
      code: "conflict",
      message: expect.stringContaining("settlement DAG has no Airflow connection in the policy."),
    });
    expect(await fx.db.accessRequest.count()).toBe(0);
    expect(await fx.db.auditEvent.count({ where: { action: "request.created" } })).toBe(0);
  });

  it("becomes requestable once its variables are set", async () => {
    Object.assign(process.env, { TEST_AIRFLOW_URL: "http://127.0.0.1:1", TEST_AIRFLOW_USER: "latchkey", TEST_AIRFLOW_PASSWORD: "unused" });
    const engine = await import("@/lib/approvals/engine");
    const request = await engine.createRequest(alice, "trigger-dag", trigger);
    expect(request.status).toBe("pending");
  });
});
