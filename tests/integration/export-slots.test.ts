import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";

/**
 * Each history export holds a database connection of its own and a snapshot while it is
 * downloaded, so an instance runs at most MAX_RUNNING_EXPORTS at once (the route answers 503
 * with Retry-After past that), and an export gives its place back however it ends: read to
 * the end, cancelled by the browser, or failed.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
beforeAll(async () => {
  fx = await engineFixture();
  const engine = await import("@/lib/approvals/engine");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  await engine.createRequest(alice, "temporary-access", validInput());
});
afterAll(() => fx?.close());

describe("running exports", () => {
  it("are bounded per instance, and each gives its place back once, however it ends", async () => {
    const { exportSlot, MAX_RUNNING_EXPORTS } = await import("@/lib/history/rows");
    const { exportStream } = await import("@/lib/history/export");
    const { filtersOf, historyFiltersSchema } = await import("@/lib/history/filters");
    const filters = filtersOf(historyFiltersSchema.parse({}));
    /** Whether a place is free now (the place taken to find out is given back). */
    const placeFree = () => {
      const release = exportSlot();
      release?.();
      return release !== null;
    };

    const held = Array.from({ length: MAX_RUNNING_EXPORTS }, () => exportSlot());
    expect(held.every((release) => release !== null)).toBe(true);
    expect(exportSlot()).toBeNull();
    // What the export route answers meanwhile.
    const { startExport } = await import("@/lib/history/rows");
    const busy = startExport();
    expect("refusal" in busy).toBe(true);
    const refusal = (busy as { refusal: Response }).refusal;
    expect([refusal.status, refusal.headers.get("retry-after"), await refusal.text()]).toEqual([
      503,
      "60",
      `${MAX_RUNNING_EXPORTS} exports are running on this instance already; try again in a minute.\n`,
    ]);
    // Giving a place back twice frees one place, not two.
    held[0]!();
    held[0]!();
    const again = exportSlot();
    expect(again).not.toBeNull();
    expect(exportSlot()).toBeNull();

    // An export read to the end gives its place back.
    again!();
    const whole = await new Response(exportStream("csv", filters, "carol@example.com", null, "oldest", exportSlot()!)).text();
    expect(whole).toContain("request.created");
    expect(placeFree()).toBe(true);

    // So does one the browser cancels part-way (after the header line).
    const reader = exportStream("jsonl", filters, "carol@example.com", null, "oldest", exportSlot()!).getReader();
    await reader.read();
    await reader.cancel();
    expect(placeFree()).toBe(true);
    // The other three are still held: one place is free, not two.
    const last = exportSlot();
    expect(placeFree()).toBe(false);
    last!();
    for (const release of held.slice(1)) release!();
  });
});

describe("an export's statement", () => {
  it("is one snapshot, held back while the download takes nothing, read on to the last row, and ended when the download stops or stalls", async () => {
    const rows = await import("@/lib/history/rows");
    const { filtersOf, historyFiltersSchema } = await import("@/lib/history/filters");
    // 60 MB: far more than the sockets between the database and the portal hold.
    await fx.db.$executeRawUnsafe(`
      INSERT INTO "AuditEvent" ("occurredAt", "actorType", action, data, note)
      SELECT timestamp '2026-01-01' + n * interval '1 second', 'system', 'test.bulk_export', '{}', repeat('x', 2000) FROM generate_series(1, 30000) n`);
    const filters = filtersOf(historyFiltersSchema.parse({ action: "test.bulk_export" }));
    /** The export's connection as the database sees it (its parallel workers left out), or nothing once it has ended. */
    const exportConnection = async () =>
      (
        await fx.db.$queryRaw<{ state: string; wait_event: string | null }[]>`
          SELECT state, wait_event FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'latchkey history export' AND backend_type = 'client backend'`
      ).map((r) => (r.state === "active" ? `active, waiting for ${r.wait_event}` : r.state));

    // One batch taken and no more: the statement waits on its send, with nothing read beyond two batches.
    const held = rows.historyRows(filters, "oldest", 100);
    const first = await held.next();
    expect(first.value).toHaveLength(100);
    await expect.poll(exportConnection, { timeout: 10_000 }).toEqual(["active, waiting for ClientWrite"]);
    // And stays so: read without pause, the whole result would be in memory within this second.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await exportConnection()).toEqual(["active, waiting for ClientWrite"]);
    // Events recorded meanwhile are not in it: the export is one snapshot, taken when it started.
    await fx.db.$executeRawUnsafe(`
      INSERT INTO "AuditEvent" ("occurredAt", "actorType", action, data)
      SELECT timestamp '2026-02-01' + n * interval '1 second', 'system', 'test.bulk_export', '{}' FROM generate_series(1, 10) n`);
    // Read on, every row arrives once and in order, and the connection ends with the last.
    const seen = [...first.value!];
    for await (const batch of held) seen.push(...batch);
    expect(seen).toHaveLength(30000);
    expect(seen.at(-1)!.occurredAt).toEqual(new Date("2026-01-01T08:20:00Z"));
    expect(seen.every((e, i) => i === 0 || e.occurredAt > seen[i - 1]!.occurredAt)).toBe(true);
    await expect.poll(exportConnection).toEqual([]);

    // A download that stops part-way ends the statement and its connection.
    const stopped = rows.historyRows(filters, "oldest", 100);
    await stopped.next();
    await expect.poll(exportConnection, { timeout: 10_000 }).toEqual(["active, waiting for ClientWrite"]);
    await stopped.return(undefined);
    await expect.poll(exportConnection).toEqual([]);

    // So does one that takes nothing for the stall time, and it fails rather than go on.
    const stall = rows.exportStall.ms;
    rows.exportStall.ms = 500;
    try {
      const stalled = rows.historyRows(filters, "oldest", 100);
      await stalled.next();
      await expect.poll(exportConnection, { timeout: 10_000 }).toEqual([]);
      await expect(stalled.next()).rejects.toThrow("the download took nothing for 0.5 s");
    } finally {
      rows.exportStall.ms = stall;
    }
  });
});
