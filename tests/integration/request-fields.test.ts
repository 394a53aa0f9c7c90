// An approver must see every field the requester filled in, whatever the workflow: this
// renders each registered workflow's request view on the server and reads it back.
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let alice: Principal, bob: Principal, carol: Principal;

// One filled-in form per registered workflow: a workflow added without one fails the first test.
const SAMPLES: Record<string, { targetId: string } & Record<string, unknown>> = {
  "temporary-access": {
    targetId: "payments-api-production",
    role: "write",
    durationMinutes: 45,
    justification: "Rotate the webhook secret for CHG-4411\nsecond line",
  },
  "open-route": { targetId: "internal-app", durationMinutes: 30, justification: "Debug the reports page for SUP-19" },
  "database-access": { targetId: "ledger-db", role: "read", durationMinutes: 20, justification: "Reconcile totals for FIN-77" },
  "trigger-dag": {
    targetId: "settlement-airflow",
    conf: '{"day":"2026-11-24","regions":["eu","us"],"retry":{"max":3}}',
    justification: "Re-run settlement for the 24th after INC-9",
  },
  "restart-job": {
    targetId: "settlement-airflow",
    runId: "scheduled__2026-11-25T00:00:00+00:00",
    scope: ["failed-tasks", "downstream"],
    dryRun: true,
    justification: "Clear the failed loaders after INC-10",
  },
};

const decode = (html: string) =>
  html
    .replace(/<[^>]+>/g, "")
    .replace(/&quot;/g, '"')
    .replace(/&#x27;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");

/** The text of each field's value as rendered, by field name. */
function renderedFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<dd[^>]*data-testid="field-([\w-]+)"[^>]*>([\s\S]*?)<\/dd>/g)) out[m[1]!] = decode(m[2]!);
  return out;
}

/** What the approver must be able to read for a value the requester gave. */
function expectShown(shown: string | undefined, name: string, value: unknown, durationKind: boolean) {
  expect(shown, name).toBeDefined();
  if (Array.isArray(value)) for (const v of value) expect(shown, name).toContain(String(v));
  else if (typeof value === "boolean") expect(shown, name).toBe(value ? "yes" : "no");
  else if (durationKind) expect(shown, name).toBe(`${value} min`);
  else if (typeof value === "string" && value.trim().startsWith("{")) expect(JSON.parse(shown!), name).toEqual(JSON.parse(value));
  else expect(shown, name).toContain(String(value));
}

beforeAll(async () => {
  fx = await engineFixture({
    TEST_LEDGER_DB_URL: "postgresql://ledger:unused@127.0.0.1:1/ledger",
    TEST_AIRFLOW_URL: "http://127.0.0.1:1",
    TEST_AIRFLOW_USER: "latchkey",
    TEST_AIRFLOW_PASSWORD: "unused",
    LATCHKEY_HAPROXY_SOCKET: "/nonexistent/haproxy.sock",
    LATCHKEY_HAPROXY_MAP: "/nonexistent/routes.map",
  });
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  carol = await fx.user("carol@example.com", ["audit"]);
});
afterAll(() => fx?.close());

describe("the decision view", () => {
  it("shows the approver every field the requester filled in, for every registered workflow", async () => {
    const { listWorkflows } = await import("@/lib/workflows/registry");
    const engine = await import("@/lib/approvals/engine");
    const { getRequestView } = await import("@/lib/approvals/queries");
    const { requestDetail } = await import("@/lib/api/views");
    const { describeFields } = await import("@/lib/workflows/fields");
    const { RequestFields } = await import("@/components/requests/request-fields");
    expect(Object.keys(SAMPLES).sort()).toEqual(
      listWorkflows()
        .map((w) => w.id)
        .sort(),
    );

    for (const workflow of listWorkflows()) {
      const input = SAMPLES[workflow.id]!;
      const created = await engine.createRequest(alice, workflow.id, input);
      const durations = new Set(
        describeFields(workflow.inputSchema as never)
          .filter((f) => f.kind === "duration")
          .map((f) => f.name),
      );
      for (const viewer of [bob, carol]) {
        const view = await getRequestView(viewer, created.id, { timeline: false });
        expect(view.workflowTitle).toBe(workflow.title);
        const html = renderToStaticMarkup(createElement(RequestFields, { fields: view.fields }));
        const shown = renderedFields(html);
        for (const [name, value] of Object.entries(input)) {
          if (name === "targetId") expect(shown.targetId, workflow.id).toContain(view.targetTitle);
          else expectShown(shown[name], `${workflow.id}.${name}`, value, durations.has(name));
        }
        // The labels come from the workflow's schema, not from a page written for one workflow.
        for (const f of describeFields(workflow.inputSchema as never))
          expect(html, `${workflow.id} label ${f.name}`).toContain(f.label.replace(/ \(minutes\)$/, "").replace(/&/g, "&amp;"));
      }
      // The API's request view carries the same fields.
      const detail = await requestDetail(bob, created.id);
      expect(detail.workflowTitle).toBe(workflow.title);
      expect(detail.fields.map((f) => f.name)).toEqual(expect.arrayContaining(Object.keys(input)));
    }
  });

  it("formats a run configuration as indented JSON and keeps line breaks of long text", async () => {
    const { getRequestView } = await import("@/lib/approvals/queries");
    const [trigger] = await fx.db.accessRequest.findMany({ where: { workflowId: "trigger-dag" } });
    const view = await getRequestView(bob, trigger!.id, { timeline: false });
    const conf = view.fields.find((f) => f.name === "conf")!;
    expect(conf.format).toBe("json");
    expect(conf.value).toBe(JSON.stringify({ day: "2026-11-24", regions: ["eu", "us"], retry: { max: 3 } }, null, 2));
    const [temporary] = await fx.db.accessRequest.findMany({ where: { workflowId: "temporary-access" } });
    const justification = (await getRequestView(bob, temporary!.id, { timeline: false })).fields.find((f) => f.name === "justification")!;
    expect(justification.value).toBe("Rotate the webhook secret for CHG-4411\nsecond line");
  });

  it("an extension shows what it changes against the grant it extends", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { getRequestView } = await import("@/lib/approvals/queries");
    const { requestDetail } = await import("@/lib/api/views");
    const grant = await engine.createRequest(alice, "temporary-access", {
      targetId: "payments-api-staging",
      role: "read",
      durationMinutes: 30,
      justification: "Read the staging logs for SUP-1",
    });
    await engine.decide(bob, { requestId: grant.id, decision: "approve", comment: "ok" });
    const extension = await engine.requestExtension(alice, { requestId: grant.id, durationMinutes: 60, justification: "Still reading the logs for SUP-1" });
    const view = await getRequestView(bob, extension.id, { timeline: false });
    expect(view.extension).toMatchObject({ id: grant.id, status: "active", changes: [{ label: "Duration", from: "30 min", to: "1 h" }] });
    expect((await requestDetail(bob, extension.id)).extends?.changes).toEqual([{ label: "Duration", from: "30 min", to: "1 h" }]);
  });
});
