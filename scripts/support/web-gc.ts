/**
 * The web server's garbage collection during a benchmark's phase: its own Prometheus metrics
 * (prom-client's nodejs_gc_duration_seconds, one observation per collection, by kind) read
 * before and after, so a phase's collections are counted where they happened. Every
 * collection stops the event loop, so each one adds its pause to every call in flight.
 */
export type GcReading = Record<string, { count: number; seconds: number }>;
export type GcPerApproval = Record<string, { collections: number; msPerApproval: number }>;

export async function webGc(url: string, token: string): Promise<GcReading> {
  const response = await fetch(`${url}/api/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`the web server's metrics answered ${response.status}`);
  const reading: GcReading = {};
  for (const [, part, kind, value] of (await response.text()).matchAll(/^nodejs_gc_duration_seconds_(sum|count)\{kind="(\w+)"\} (\S+)$/gm)) {
    const entry = (reading[kind!] ??= { count: 0, seconds: 0 });
    if (part === "sum") entry.seconds = Number(value);
    else entry.count = Number(value);
  }
  return reading;
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

/** Calls that waited for a database connection in the web server, and how long in all (its latchkey_db_pool_wait_seconds). */
export async function webPoolWaits(url: string, token: string): Promise<{ calls: number; seconds: number }> {
  const response = await fetch(`${url}/api/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`the web server's metrics answered ${response.status}`);
  const text = await response.text();
  const read = (part: string) => Number(text.match(new RegExp(`^latchkey_db_pool_wait_seconds_${part} (\\S+)$`, "m"))?.[1] ?? 0);
  return { calls: read("count"), seconds: read("sum") };
}
