import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { engineFixture } from "../helpers/engine-fixture";
import { beacon } from "../plugins/beacon/adapter";
import { pingBeacon } from "../plugins/ping-beacon/server";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * A workflow and an integration added from outside lib/, the way docs/ARCHITECTURE.md says:
 * their folders under tests/plugins/ and one registration line each. Everything below
 * reaches them only through the registries, so it fails if any of the catalog, the engine,
 * the policy schema, the environment parser or Admin → Integrations names its plugins by hand.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let alice: Principal;
let bob: Principal;
let lampServer: http.Server;
let lampStatus = 200;
let policyFile: string;
let beaconUrl: string;

function policyWith(beaconBlock: unknown): string {
  const base = parse(readFileSync(path.join(process.cwd(), "tests/fixtures/policy.yaml"), "utf8"));
  base.targets["beacon-room"] = { title: "Beacon room", service: "lamps", environment: "test", beacon: beaconBlock };
  base.workflows["ping-beacon"] = {
    targets: { "beacon-room": { requesters: ["engineering"], stages: [{ name: "Lamp keeper", groups: ["engineering-leads"], required: 1 }] } },
  };
  return stringify(base);
}

beforeAll(async () => {
  lampServer = http.createServer((req, res) => res.writeHead(req.url === "/lamps/lobby" ? lampStatus : 404).end());
  await new Promise<void>((resolve) => lampServer.listen(0, "127.0.0.1", resolve));
  beaconUrl = `http://127.0.0.1:${(lampServer.address() as AddressInfo).port}/`;
  policyFile = path.join(mkdtempSync(path.join(os.tmpdir(), "latchkey-plugins-")), "policy.yaml");
  writeFileSync(policyFile, policyWith({ channel: "lobby" }));
  fx = await engineFixture({ LATCHKEY_POLICY_FILE: policyFile, LATCHKEY_BEACON_URL: beaconUrl });
  const { registerIntegration } = await import("@/lib/integrations/registry");
  const { registerWorkflow } = await import("@/lib/workflows/registry");
  // The one line each: nothing else in lib/ learns about the test's plugins.
  registerIntegration(beacon);
  registerWorkflow(pingBeacon);
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  await fx?.close();
  lampServer?.closeAllConnections();
  await new Promise((resolve) => lampServer?.close(resolve));
});

describe("a test-only integration, registered with one line", () => {
  it("adds its block to a policy target: accepted when right, a typo refused naming the file, the path and the block", async () => {
    const { parsePolicy } = await import("@/lib/policy/load");
    expect(parsePolicy(policyWith({ channel: "lobby" }), "policy.yaml").targets["beacon-room"]).toMatchObject({ beacon: { channel: "lobby" } });
    expect(() => parsePolicy(policyWith({ chanel: "lobby" }), "policy.yaml")).toThrow(
      /^policy\.yaml: invalid policy\n.*targets\.beacon-room\.beacon.*`chanel` is not a key of a target's beacon block; did you mean `channel`\?/s,
    );
    expect(() => parsePolicy(policyWith({ channel: "Lobby!" }), "policy.yaml")).toThrow(
      /targets\.beacon-room\.beacon\.channel.*must be a channel name in lower-case letters/,
    );
  });

  it("adds its settings to the environment: parsed, known, and a bad value refused naming the variable", async () => {
    const { ConfigError, isKnownVariable, parseEnv } = await import("@/lib/env");
    expect((parseEnv(process.env) as Record<string, unknown>).LATCHKEY_BEACON_URL).toBe(beaconUrl);
    expect(isKnownVariable("LATCHKEY_BEACON_URL")).toBe(true);
    let refused: unknown;
    try {
      parseEnv({ ...process.env, LATCHKEY_BEACON_URL: "lamps.example" });
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toContain("  LATCHKEY_BEACON_URL: must be the beacon service's http(s) URL");
  });

  it("shows its health on Admin → Integrations for each target that uses it, probed now", async () => {
    const { integrationStatuses } = await import("@/lib/integrations/status");
    const row = async () => (await integrationStatuses()).filter((s) => s.kind === "beacon");
    expect(await row()).toEqual([{ targetId: "beacon-room", title: "Beacon room", kind: "beacon", reachable: true, detail: "answered", lastErrors: [] }]);
    lampStatus = 503;
    try {
      expect(await row()).toMatchObject([{ targetId: "beacon-room", reachable: false, detail: "the beacon service answered 503" }]);
    } finally {
      lampStatus = 200;
    }
  });
});

describe("a test-only workflow, registered with one line", () => {
  it("is in the catalog with the form its schema describes, available where its integration is configured", async () => {
    const { workflowsFor } = await import("@/lib/workflows/catalog");
    const entry = workflowsFor(alice).find((w) => w.id === "ping-beacon");
    expect(entry).toMatchObject({ title: "Light a beacon", category: "Test", risk: "low", lasting: false });
    expect(entry!.fields.map((f) => [f.name, f.kind, f.options ?? null])).toEqual([
      ["targetId", "select", null],
      ["colour", "select", ["green", "amber"]],
      ["justification", "longtext", null],
    ]);
    expect(entry!.targets).toMatchObject([{ id: "beacon-room", available: true, unavailableReason: null }]);
    const { unavailability } = await import("@/lib/workflows/availability");
    const { policy } = await import("@/lib/policy/current");
    expect(unavailability("ping-beacon", policy().targets["beacon-room"]!, {})).toEqual({
      reason: "The beacon service is not configured on this portal yet.",
      missing: ["LATCHKEY_BEACON_URL"],
    });
  });

  it("validates its form, then is created, approved, executed and audited through the engine", async () => {
    const engine = await import("@/lib/approvals/engine");
    await expect(
      engine.createRequest(alice, "ping-beacon", { targetId: "beacon-room", colour: "red", justification: "the lobby lamp check" }),
    ).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { colour: "Choose green or amber." },
    });
    const request = await engine.createRequest(alice, "ping-beacon", { targetId: "beacon-room", colour: "amber", justification: "the lobby lamp check" });
    expect(request.status).toBe("pending");
    const done = await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect(done.status).toBe("active");
    const events = await fx.db.auditEvent.findMany({ where: { requestId: request.id }, orderBy: { id: "asc" } });
    // An inline workflow's execution is audited as what it issued, with its audit facts, then the grant begins.
    expect(events.map((e) => [e.action, e.toStatus])).toEqual([
      ["request.created", "pending"],
      ["request.approved", "approved"],
      ["request.executing", "executing"],
      ["credential.issued", null],
      ["grant.activated", "active"],
    ]);
    expect(events.find((e) => e.action === "credential.issued")!.data).toEqual({ channel: "lobby", colour: "amber" });
  });
});
