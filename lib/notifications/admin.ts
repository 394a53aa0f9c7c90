import "server-only";
import { db } from "../db";

/** Deliveries that gave up, newest first, for the admin page. */
export async function failedDeliveries(limit = 100) {
  return db.notificationDelivery.findMany({ where: { status: "failed" }, orderBy: { createdAt: "desc" }, take: limit });
}

export async function deliveryCounts() {
  const rows = await db.notificationDelivery.groupBy({ by: ["status"], _count: { _all: true } });
  return Object.fromEntries(rows.map((r) => [r.status, r._count._all])) as Partial<Record<"pending" | "delivered" | "failed", number>>;
}
