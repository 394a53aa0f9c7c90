import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { engineFixture } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

/**
 * The deployment artefacts kept honest: the compose file, the Kubernetes manifests as
 * `kubectl kustomize` renders them, the systemd units and the Dockerfile set only variables
 * lib/env.ts knows, run only roles the entry knows, and point every probe and port at what
 * the process in question listens on; each probe path is then asked of the real handler.
 * The alert rules and the dashboard name only series Latchkey exports.
 */
const root = process.cwd();
const ROLES = ["all", "web", "worker", "authz", "migrate"];
/** What each role listens on, and the variable that says so. */
const LISTENS = {
  web: { variable: "PORT", fallback: "3000", probes: ["/api/ready", "/api/health"] },
  worker: { variable: "LATCHKEY_WORKER_PORT", probes: ["/api/health"] },
  authz: { variable: "LATCHKEY_AUTHZ_PORT", probes: ["/api/health"] },
} as const;
const METRICS_TOKEN = "deploy-test-metrics-token-0123456789";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let isKnownVariable: (name: string) => boolean;
const probed = new Map<string, Set<string>>(); // role -> probe paths the artefacts use

function noteProbe(role: string, probePath: string) {
  if (!probed.has(role)) probed.set(role, new Set());
  probed.get(role)!.add(probePath);
}

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_METRICS_TOKEN: METRICS_TOKEN });
  ({ isKnownVariable } = await import("@/lib/env"));
});
afterAll(async () => {
  await fx?.close();
});

describe("compose.yaml", () => {
  const compose = parse(readFileSync(path.join(root, "compose.yaml"), "utf8"), { merge: true }) as {
    services: Record<
      string,
      { image?: string; command?: string[]; environment?: Record<string, string>; ports?: string[]; healthcheck?: { test?: string[]; disable?: boolean } }
    >;
  };
  const latchkey = Object.entries(compose.services).filter(([, s]) => s.image === "latchkey:local");

  it("runs the migration, the web server, the worker and the authorization listener from the one image", () => {
    expect(Object.fromEntries(latchkey.map(([name, s]) => [name, s.command]))).toEqual({
      migrate: ["migrate"],
      web: ["web"],
      worker: ["worker"],
      authz: ["authz"],
    });
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(["postgres", "haproxy"]));
  });

  it("sets only variables lib/env.ts knows", () => {
    for (const [name, service] of latchkey)
      for (const variable of Object.keys(service.environment ?? {})) expect(isKnownVariable(variable), `${name}: ${variable}`).toBe(true);
  });

  it("publishes and health-checks the port each process listens on", () => {
    for (const [name, service] of latchkey) {
      const role = service.command![0] as keyof typeof LISTENS | "migrate";
      if (role === "migrate") {
        expect(service.healthcheck?.disable).toBe(true);
        continue;
      }
      const listens = LISTENS[role];
      const port = service.environment?.[listens.variable] ?? ("fallback" in listens ? listens.fallback : undefined);
      expect(port, `${name} sets ${listens.variable}`).toBeDefined();
      const probe = service.healthcheck!.test!.join(" ").match(/http:\/\/127\.0\.0\.1:(\d+)(\/[\w/]+)/);
      expect(probe?.[1], `${name}: health check port`).toBe(port);
      noteProbe(role, probe![2]!);
      for (const published of service.ports ?? []) expect(published.split(":").at(-1), `${name}: published port`).toBe(port);
    }
  });
});

describe("Kubernetes manifests (kubectl kustomize)", () => {
  type Container = {
    name: string;
    args?: string[];
    env?: { name: string; value?: string }[];
    envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
    ports?: { name: string; containerPort: number }[];
    securityContext?: Record<string, unknown>;
    [probe: string]: unknown;
  };
  type Resource = { kind: string; metadata: { name: string; namespace?: string }; spec?: any; data?: Record<string, string> };
  const render = (dir: string): Resource[] =>
    parseAllDocuments(execFileSync("kubectl", ["kustomize", path.join(root, "deploy/kubernetes", dir)], { encoding: "utf8" })).map((d) => d.toJS() as Resource);
  const overlays = readdirSync(path.join(root, "deploy/kubernetes/overlays"));

  it("renders the base and every overlay offline", () => {
    expect(overlays).toContain("example");
    for (const dir of ["base", ...overlays.map((o) => `overlays/${o}`)]) {
      const kinds = render(dir).map((r) => `${r.kind}/${r.metadata.name}`);
      expect(kinds, dir).toEqual(
        expect.arrayContaining(["Deployment/latchkey-web", "Deployment/latchkey-worker", "Deployment/latchkey-authz", "PodDisruptionBudget/latchkey-web"]),
      );
    }
  });

  for (const overlay of ["base", "overlays/example"]) {
    it(`${overlay}: web, worker and listener run their roles with known variables, probes on their own ports, as non-root on a read-only filesystem`, () => {
      const resources = render(overlay);
      const byName = (kind: string, name: string) => resources.find((r) => r.kind === kind && r.metadata.name.startsWith(name));
      const deployments = resources.filter((r) => r.kind === "Deployment");
      expect(deployments.map((d) => d.spec.template.spec.containers[0].args[0]).sort()).toEqual(["authz", "web", "worker"]);
      for (const deployment of deployments) {
        const pod = deployment.spec.template.spec;
        expect(pod.securityContext.runAsNonRoot, deployment.metadata.name).toBe(true);
        for (const container of [...(pod.initContainers ?? []), ...pod.containers] as Container[]) {
          const where = `${deployment.metadata.name}/${container.name}`;
          const role = container.args![0]!;
          expect(ROLES, where).toContain(role);
          expect(container.securityContext?.readOnlyRootFilesystem, where).toBe(true);
          expect(container.resources, where).toBeDefined();
          // Every variable: set directly, or every key of the ConfigMaps and Secrets it reads.
          const variables = new Map<string, string | undefined>();
          for (const from of container.envFrom ?? []) {
            const ref = from.configMapRef ?? from.secretRef!;
            const source = byName(from.configMapRef ? "ConfigMap" : "Secret", ref.name);
            if (from.secretRef && overlay === "base") continue; // the base leaves the Secret to the overlay
            expect(source, `${where}: ${ref.name}`).toBeDefined();
            for (const [key, value] of Object.entries(source!.data ?? {})) variables.set(key, from.configMapRef ? value : undefined);
          }
          for (const { name, value } of container.env ?? []) variables.set(name, value);
          for (const name of variables.keys()) expect(isKnownVariable(name), `${where}: ${name}`).toBe(true);
          if (role === "migrate") continue;
          const listens = LISTENS[role as keyof typeof LISTENS];
          const port = Number(variables.get(listens.variable) ?? ("fallback" in listens ? listens.fallback : NaN));
          for (const kind of ["readinessProbe", "livenessProbe", "startupProbe"]) {
            const probe = container[kind] as { httpGet: { path: string; port: string | number } } | undefined;
            if (!probe) continue;
            const target =
              typeof probe.httpGet.port === "number" ? probe.httpGet.port : container.ports!.find((p) => p.name === probe.httpGet.port)?.containerPort;
            expect(target, `${where} ${kind} port`).toBe(port);
            noteProbe(role, probe.httpGet.path);
          }
          expect(container.readinessProbe ?? container.livenessProbe, `${where} has probes`).toBeDefined();
        }
      }
      // Services reach a named port of the pods they select.
      for (const service of resources.filter((r) => r.kind === "Service")) {
        const pods = deployments.filter((d) => Object.entries(service.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
        expect(pods.length, service.metadata.name).toBe(1);
        for (const { targetPort } of service.spec.ports)
          expect(
            pods[0]!.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name),
            service.metadata.name,
          ).toContain(targetPort);
      }
      for (const pdb of resources.filter((r) => r.kind === "PodDisruptionBudget")) {
        expect(
          deployments.some((d) => Object.entries(pdb.spec.selector.matchLabels).every(([k, v]) => d.spec.template.metadata.labels[k] === v)),
          pdb.metadata.name,
        ).toBe(true);
      }
      for (const hpa of resources.filter((r) => r.kind === "HorizontalPodAutoscaler"))
        expect(byName("Deployment", hpa.spec.scaleTargetRef.name), hpa.metadata.name).toBeDefined();
    });
  }
});

describe("systemd units and the Dockerfile", () => {
  const units = readdirSync(path.join(root, "deploy/systemd")).filter((f) => f.endsWith(".service"));

  it("run the entry's roles with known variables and the ports the probes expect", () => {
    expect(units.sort()).toEqual(["latchkey-authz.service", "latchkey-migrate.service", "latchkey-web.service", "latchkey-worker.service"]);
    for (const unit of units) {
      const text = readFileSync(path.join(root, "deploy/systemd", unit), "utf8");
      const role = text.match(/^ExecStart=\S+ \/opt\/latchkey\/latchkey\.mjs (\w+)$/m)?.[1];
      expect(role, unit).toBe(unit.replace(/^latchkey-|\.service$/g, ""));
      expect(text, unit).toMatch(/^User=latchkey$/m);
      for (const line of text.match(/^Environment=.*$/gm) ?? [])
        for (const pair of line.slice("Environment=".length).split(" ")) expect(isKnownVariable(pair.split("=")[0]!), `${unit}: ${pair}`).toBe(true);
    }
    if (existsSync("/usr/bin/systemd-analyze")) {
      // Syntax and directives as systemd reads them (the user and /usr/bin/node need not exist here).
      const check = spawnSync("systemd-analyze", ["verify", "--man=no", ...units.map((u) => path.join(root, "deploy/systemd", u))], { encoding: "utf8" });
      const problems = `${check.stdout}${check.stderr}`
        .split("\n")
        .filter((l) => l.trim() && !/latchkey\.mjs|\/usr\/bin\/node|Failed to resolve user|postgresql\.service|network-online|Cannot add dependency/.test(l));
      expect(problems).toEqual([]);
    }
  });

  it("builds with the development tools and ships only the standalone output, as an unprivileged user, health-checked on /api/ready", () => {
    const text = readFileSync(path.join(root, "Dockerfile"), "utf8");
    const stages = text.split(/^FROM /m).slice(1);
    expect(stages).toHaveLength(2);
    expect(stages[0]).toMatch(/^node:\$\{NODE_VERSION\}/);
    expect(text).toMatch(/^ARG NODE_VERSION=(\d+)$/m);
    expect(Number(text.match(/^ARG NODE_VERSION=(\d+)$/m)![1])).toBeGreaterThanOrEqual(22);
    expect(stages[0]).toMatch(/^RUN npm run build$/m);
    const runtime = stages[1]!;
    expect(runtime.match(/^COPY .*$/gm)).toEqual(["COPY --from=build --chown=root:root /app/.next/standalone ./"]);
    expect(runtime).not.toMatch(/^RUN /m);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "latchkey.mjs"\]$/m);
    const health = runtime.match(/HEALTHCHECK[\s\S]*?CMD (.*)$/m)![1]!;
    expect(health).toContain("/api/ready");
    expect(health).toContain("process.env.PORT||3000");
    noteProbe("web", "/api/ready");
    for (const variable of runtime
      .match(/^ENV ([\s\S]*?)\n(?!\s)/m)![1]!
      .split(/\s+\\?\s*/)
      .filter((s) => s.includes("="))) {
      expect(isKnownVariable(variable.split("=")[0]!) || variable.startsWith("NEXT_TELEMETRY_DISABLED="), variable).toBe(true);
    }
  });
});

describe("every probe path the artefacts use", () => {
  it("answers 200 from the process it probes", async () => {
    expect([...probed.keys()].sort()).toEqual(["authz", "web", "worker"]);
    const web = await startApiServer();
    const { startAuthzListener } = await import("@/lib/authz/listener");
    const { startWorkerListener } = await import("@/lib/observability/worker-listener");
    const authz = await startAuthzListener(0, "127.0.0.1");
    const worker = await startWorkerListener(0, "127.0.0.1", () => true);
    try {
      const base = { web: web.url, authz: authz.url, worker: worker.url };
      for (const [role, paths] of probed) {
        for (const probePath of paths) expect((await fetch(`${base[role as keyof typeof base]}${probePath}`)).status, `${role} ${probePath}`).toBe(200);
      }
      // A stopped worker says so, so the orchestrator restarts it.
      const stopped = await startWorkerListener(0, "127.0.0.1", () => false);
      expect((await fetch(`${stopped.url}/api/health`)).status).toBe(503);
      await stopped.close();
    } finally {
      await Promise.all([web.close(), authz.close(), worker.close()]);
    }
  });
});

describe("alert rules and dashboard", () => {
  it("name only series Latchkey exports", async () => {
    const { metricsText } = await import("@/lib/observability/cluster-metrics");
    const { instanceMetricsText } = await import("@/lib/observability/metrics");
    const { verifyAuditChain } = await import("@/lib/audit/verify");
    await verifyAuditChain("manual");
    const exported = new Set(`${await metricsText()}\n${await instanceMetricsText()}`.match(/^# TYPE (\w+)/gm)!.map((l) => l.slice("# TYPE ".length)));
    const known = (name: string) => exported.has(name) || exported.has(name.replace(/_(bucket|count|sum)$/, ""));
    const rules = parse(readFileSync(path.join(root, "deploy/prometheus/latchkey-alerts.yaml"), "utf8")) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const dashboard = JSON.parse(readFileSync(path.join(root, "deploy/grafana/latchkey-dashboard.json"), "utf8")) as {
      panels: { targets: { expr: string }[] }[];
    };
    const expressions = [...rules.groups.flatMap((g) => g.rules.map((r) => r.expr)), ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))];
    const names = expressions.flatMap((e) => e.match(/\b(latchkey_\w+|process_\w+)\b/g) ?? []);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(known(name), name).toBe(true);
    const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(alerts).toEqual(
      expect.arrayContaining(["LatchkeyRevocationsPending", "LatchkeyExecutionsFailing", "LatchkeyAuditChainBroken", "LatchkeyQueueBacklog"]),
    );
  });

  it("are valid Prometheus rules that fire on the series that should page (promtool)", () => {
    const check = spawnSync("promtool", ["check", "rules", path.join(root, "deploy/prometheus/latchkey-alerts.yaml")], { encoding: "utf8" });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const test = spawnSync("promtool", ["test", "rules", path.join(root, "deploy/prometheus/latchkey-alerts.test.yaml")], {
      encoding: "utf8",
      cwd: path.join(root, "deploy/prometheus"),
    });
    expect(test.status, test.stdout + test.stderr).toBe(0);
  });
});
