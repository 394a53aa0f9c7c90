import { readdirSync } from "node:fs";
import path from "node:path";
import { encryptionKeyCheck } from "@/lib/credentials/reseal";
import { db } from "@/lib/db";
import { databaseRefusal } from "@/lib/errors";
import { policy } from "@/lib/policy/current";

export const dynamic = "force-dynamic";

/**
 * Readiness, for load balancers: the database answers and takes a write (a one-row probe, so
 * a read-only or exhausted database turns this red and it turns green again by itself once the
 * database recovers), every migration shipped with this build is applied, LATCHKEY_ENCRYPTION_KEY
 * opens what the database holds, and the policy loads. 503 with the failing checks named
 * otherwise. (/api/health is liveness: the process and the database answer.)
 */
export async function GET(): Promise<Response> {
  const checks: Record<string, string> = {};
  try {
    const shipped = readdirSync(path.join(process.cwd(), "prisma/migrations")).filter((d) => /^\d{14}_/.test(d));
    const applied = new Set((await db.$queryRaw<{ name: string }[]>`SELECT name FROM "_latchkey_migrations"`).map((r) => r.name));
    const missing = shipped.filter((m) => !applied.has(m));
    checks.database = "ok";
    checks.migrations = missing.length ? `${missing.length} not applied: ${missing.join(", ")}` : "ok";
  } catch (error) {
    checks.database = databaseRefusal(error) === "busy" ? "refusing connections (busy)" : "unreachable";
  }
  if (checks.database === "ok") {
    try {
      await db.$executeRaw`
        INSERT INTO "InstallationSetting" (name, value) VALUES ('ready-probe', now()::text)
        ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, "updatedAt" = now()`;
      checks.writes = "ok";
    } catch (error) {
      const reason = databaseRefusal(error);
      checks.writes = reason === "read-only" ? "refused: the database is read-only" : reason === "busy" ? "refused: the database is busy" : "refused";
    }
    if (checks.migrations === "ok") checks.encryptionKey = (await encryptionKeyCheck().catch(() => null)) ?? "ok";
  }
  try {
    policy();
    checks.policy = "ok";
  } catch (error) {
    checks.policy = (error as Error).message.split("\n")[0]!;
  }
  const ready = Object.values(checks).every((v) => v === "ok");
  return Response.json({ status: ready ? "ready" : "not ready", checks }, { status: ready ? 200 : 503, headers: { "cache-control": "no-store" } });
}
