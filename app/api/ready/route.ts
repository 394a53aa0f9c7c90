import { readdirSync } from "node:fs";
import path from "node:path";
import { db } from "@/lib/db";
import { policy } from "@/lib/policy/current";

export const dynamic = "force-dynamic";

/**
 * Readiness, for load balancers: the database answers, every migration shipped with this
 * build is applied, and the policy loads. 503 with the failing checks named otherwise.
 * (/api/health is liveness: the process and the database answer.)
 */
export async function GET(): Promise<Response> {
  const checks: Record<string, string> = {};
  try {
    const shipped = readdirSync(path.join(process.cwd(), "prisma/migrations")).filter((d) => /^\d{14}_/.test(d));
    const applied = new Set((await db.$queryRaw<{ name: string }[]>`SELECT name FROM "_latchkey_migrations"`).map((r) => r.name));
    const missing = shipped.filter((m) => !applied.has(m));
    checks.database = "ok";
    checks.migrations = missing.length ? `${missing.length} not applied: ${missing.join(", ")}` : "ok";
  } catch {
    checks.database = "unreachable";
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
