/**
 * The web server's garbage collection during a benchmark's phase: its own Prometheus metrics
 * (prom-client's nodejs_gc_duration_seconds, one observation per collection, by kind) read
 * before and after, so a phase's collections are counted where they happened. Every
 * collection stops the event loop, so each one adds its pause to every call in flight.
 */
export type GcReading = Record<string, { count: number; seconds: number }>;
export type GcPerApproval = Record<string, { collections: number; msPerApproval: number }>;

/** The web server's own metrics, read once: its garbage collections and its calls that waited for a database connection. */
export async function webReadings(url: string, token: string): Promise<{ gc: GcReading; poolWaits: PoolWaits }> {
  const response = await fetch(`${url}/api/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`the web server's metrics answered ${response.status}`);
  const text = await response.text();
  const gc: GcReading = {};
  for (const [, part, kind, value] of text.matchAll(/^nodejs_gc_duration_seconds_(sum|count)\{kind="(\w+)"\} (\S+)$/gm)) {
    const entry = (gc[kind!] ??= { count: 0, seconds: 0 });
    if (part === "sum") entry.seconds = Number(value);
    else entry.count = Number(value);
  }
  // latchkey_db_pool_wait_seconds (lib/observability/metrics.ts): calls that found every connection of the pool in use.
  const waits = (part: string) => Number(text.match(new RegExp(`^latchkey_db_pool_wait_seconds_${part} (\\S+)$`, "m"))?.[1] ?? 0);
  return { gc, poolWaits: { calls: waits("count"), seconds: waits("sum") } };
}

export const webGc = async (url: string, token: string): Promise<GcReading> => (await webReadings(url, token)).gc;

/** Calls that waited for a database connection in the web server, and how long in all. */
export interface PoolWaits {
  calls: number;
  seconds: number;
}

/** Collections of each kind between two readings, and their time per approval (or per floor pair). */
export function gcPer(before: GcReading, after: GcReading, approvals: number): GcPerApproval {
  const per: GcPerApproval = {};
  for (const [kind, end] of Object.entries(after)) {
    const start = before[kind] ?? { count: 0, seconds: 0 };
    per[kind] = { collections: end.count - start.count, msPerApproval: +(((end.seconds - start.seconds) * 1000) / Math.max(1, approvals)).toFixed(3) };
  }
  return per;
}
