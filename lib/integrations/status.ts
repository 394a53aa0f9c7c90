import "server-only";
import { db } from "../db";
import { env } from "../env";
import { policy } from "../policy/current";
import { airflowClient, AirflowError } from "./airflow/client";
import { runtimeApi } from "./haproxy/runtime-api";
import { postgresGrants } from "./postgres/database-grants";
import { slackAppStatus } from "./slack/health";

export interface IntegrationStatus {
  targetId: string;
  title: string;
  kind: "postgres" | "haproxy" | "airflow" | "slack";
  reachable: boolean;
  detail: string;
  lastErrors: { at: Date; message: string }[];
}

async function probe(work: () => Promise<unknown>): Promise<{ reachable: boolean; detail: string }> {
  try {
    await Promise.race([work(), new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 5 s")), 5_000))]);
    return { reachable: true, detail: "answered" };
  } catch (error) {
    return { reachable: false, detail: (error as Error).message };
  }
}

/** Every integration the policy configures, checked now, with the last execution errors on its target. */
export async function integrationStatuses(): Promise<IntegrationStatus[]> {
  const statuses: IntegrationStatus[] = [];
  for (const [targetId, target] of Object.entries(policy().targets)) {
    const checks: { kind: IntegrationStatus["kind"]; run: () => Promise<{ reachable: boolean; detail: string }> }[] = [];
    if (target.database) {
      const url = process.env[target.database.connectionEnv];
      checks.push({
        kind: "postgres",
        run: () =>
          url ? probe(() => postgresGrants(url).ping()) : Promise.resolve({ reachable: false, detail: `${target.database!.connectionEnv} is not set` }),
      });
    }
    if (target.haproxy) {
      const { LATCHKEY_HAPROXY_SOCKET: socket, LATCHKEY_HAPROXY_MAP: map } = env();
      checks.push({
        kind: "haproxy",
        run: () =>
          socket && map
            ? probe(() => runtimeApi(socket).showMap(map))
            : Promise.resolve({ reachable: false, detail: "LATCHKEY_HAPROXY_SOCKET or LATCHKEY_HAPROXY_MAP is not set" }),
      });
    }
    if (target.airflow) {
      const a = target.airflow;
      const [baseUrl, username, password] = [process.env[a.urlEnv], process.env[a.userEnv], process.env[a.passwordEnv]];
      checks.push({
        kind: "airflow",
        run: () =>
          baseUrl && username && password
            ? probe(async () => {
                // Reading a run that cannot exist proves reachability and credentials: 404 is the healthy answer.
                await airflowClient({ baseUrl, username, password, version: a.version })
                  .getDagRun(a.dagId, "latchkey__health_check")
                  .catch((e: unknown) => {
                    if (!(e instanceof AirflowError && e.status === 404)) throw e;
                  });
              })
            : Promise.resolve({ reachable: false, detail: `${a.urlEnv}, ${a.userEnv} or ${a.passwordEnv} is not set` }),
      });
    }
    if (checks.length === 0) continue;
    const recent = await db.accessRequest.findMany({ where: { targetId }, select: { id: true }, orderBy: { createdAt: "desc" }, take: 200 });
    const errors = await db.auditEvent.findMany({
      where: { action: { in: ["request.execution_retry", "request.failed"] }, requestId: { in: recent.map((r) => r.id) } },
      orderBy: { id: "desc" },
      take: 3,
    });
    const lastErrors = errors.map((e) => ({
      at: e.occurredAt,
      message: String((e.data as Record<string, unknown>).error ?? (e.data as Record<string, unknown>).reason ?? e.action),
    }));
    for (const check of checks) statuses.push({ targetId, title: target.title, kind: check.kind, ...(await check.run()), lastErrors });
  }
  const slack = await slackAppStatus(probe);
  if (slack) statuses.push(slack);
  return statuses;
}
