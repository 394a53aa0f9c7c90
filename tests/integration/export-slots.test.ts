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
  /** The export's connection as the database sees it (its parallel workers left out), or nothing once it has ended. */
  const exportConnection = async () =>
    (
      await fx.db.$queryRaw<{ state: string; wait_event_type: string | null; wait_event: string | null }[]>`
        SELECT state, wait_event_type, wait_event FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'latchkey history export' AND backend_type = 'client backend'`
    ).map((r) => (r.state === "active" ? `active, waiting for ${r.wait_event_type === "Lock" ? "a lock" : r.wait_event}` : r.state));
  const filters = async () => {
    const { filtersOf, historyFiltersSchema } = await import("@/lib/history/filters");
    return filtersOf(historyFiltersSchema.parse({ action: "test.bulk_export" }));
  };
  /** Whether a place is free now (the place taken to find out is given back). */
  const placeFree = async () => {
    const { exportSlot } = await import("@/lib/history/rows");
    const release = exportSlot();
    release?.();
    return release !== null;
  };

  beforeAll(async () => {
    // New connections (each export's own) plan even this scan with as many parallel workers as they may.
    const [{ name }] = (await fx.db.$queryRaw<{ name: string }[]>`SELECT current_database() AS name`) as [{ name: string }];
    await fx.db.$executeRawUnsafe(`ALTER DATABASE "${name}" SET parallel_setup_cost = 0`);
    await fx.db.$executeRawUnsafe(`ALTER DATABASE "${name}" SET parallel_tuple_cost = 0`);
    await fx.db.$executeRawUnsafe(`ALTER DATABASE "${name}" SET min_parallel_table_scan_size = 0`);
    // 60 MB: far more than the sockets between the database and the portal hold.
    await fx.db.$executeRawUnsafe(`
      INSERT INTO "AuditEvent" ("occurredAt", "actorType", action, data, note)
      SELECT timestamp '2026-01-01' + n * interval '1 second', 'system', 'test.bulk_export', '{}', repeat('x', 2000) FROM generate_series(1, 30000) n`);
  });

  it("is one snapshot, read ahead of the download by one batch at most, and read on to the last row", async () => {
    const { exportStream } = await import("@/lib/history/export");
    const pg = (await import("pg")).default;
    // Rows the driver has read from the database, whoever asked.
    let received = 0;
    const prototype = pg.Query.prototype as unknown as { handleDataRow: (...args: unknown[]) => unknown };
    const handleDataRow = prototype.handleDataRow;
    prototype.handleDataRow = function (this: unknown, ...args: unknown[]) {
      received += 1;
      return handleDataRow.apply(this, args);
    };
    try {
      // The header and one batch (5,000 rows) taken, and no more.
      const reader = exportStream("csv", await filters(), "carol@example.com", null).getReader();
      const decoder = new TextDecoder();
      let text = "";
      for (let i = 0; i < 2; i++) text += decoder.decode((await reader.read()).value, { stream: true });
      await expect.poll(exportConnection, { timeout: 10_000 }).toEqual(["active, waiting for ClientWrite"]);
      // And it stays so: read without pause, all 30,000 rows would be in memory within this second.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(await exportConnection()).toEqual(["active, waiting for ClientWrite"]);
      // At most one parallel worker of the database's, though the database is set to plan every scan in parallel (below).
      const [workers] = await fx.db.$queryRaw<{ n: bigint }[]>`
        SELECT count(*) AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'latchkey history export' AND backend_type = 'parallel worker'`;
      expect(Number(workers!.n)).toBeLessThanOrEqual(1);
      // The batch taken, part of the one read ahead, and what one read of the socket held: nothing
      // else is formatted or queued ahead of the download.
      expect(received).toBeLessThan(2 * 5000 + 100);
      // Events recorded meanwhile are not in it: the export is one snapshot, taken when it started.
      await fx.db.$executeRawUnsafe(`
        INSERT INTO "AuditEvent" ("occurredAt", "actorType", action, data)
        SELECT timestamp '2026-02-01' + n * interval '1 second', 'system', 'test.bulk_export', '{}' FROM generate_series(1, 10) n`);
      // Read on, every row arrives once and in order, and the connection ends with the last.
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += decoder.decode(chunk.value, { stream: true });
      const times = text
        .trimEnd()
        .split("\r\n")
        .slice(3)
        .map((line) => line.split(",")[2]!);
      expect(times).toHaveLength(30000);
      expect(times.every((t, i) => i === 0 || t > times[i - 1]!)).toBe(true);
      expect(times.at(-1)).toBe("2026-01-01T08:20:00.000Z");
      await expect.poll(exportConnection).toEqual([]);
    } finally {
      prototype.handleDataRow = handleDataRow;
    }
  });

  it("ends with its connection when the download stops, also while it waits for the database, before the place is given back", async () => {
    const rows = await import("@/lib/history/rows");
    const { exportStream } = await import("@/lib/history/export");
    // Stopped part-way, with a batch waiting.
    const stopped = rows.historyRows(await filters(), "oldest", 100);
    await stopped.next();
    await expect.poll(exportConnection, { timeout: 10_000 }).toEqual(["active, waiting for ClientWrite"]);
    await stopped.return(undefined);
    await expect.poll(exportConnection).toEqual([]);

    // Cancelled while its statement waits on a lock: the download is gone, so is the statement, at once.
    // The place is given back once, and only after the export's connection has closed.
    const pg = (await import("pg")).default;
    const clientEnd = pg.Client.prototype.end;
    let exportClosed = false;
    pg.Client.prototype.end = async function (this: { connectionParameters?: { application_name?: string } }, ...args: unknown[]) {
      const result = await (clientEnd as (...a: unknown[]) => Promise<void>).apply(this, args);
      if (this.connectionParameters?.application_name === "latchkey history export") exportClosed = true;
      return result;
    } as typeof clientEnd;
    const ends: boolean[] = [];
    await fx.db
      .$transaction(
        async (tx) => {
          await tx.$executeRawUnsafe(`LOCK TABLE "AuditEvent" IN ACCESS EXCLUSIVE MODE`);
          const reader = exportStream("jsonl", await filters(), "carol@example.com", null, "oldest", () => ends.push(exportClosed)).getReader();
          await reader.read();
          const waiting = reader.read().catch(() => undefined);
          await expect.poll(exportConnection, { timeout: 10_000 }).toEqual(["active, waiting for a lock"]);
          await reader.cancel();
          await waiting;
          // The place is given back once the connection is closed, and the statement ends while the lock is still held.
          expect(ends).toEqual([true]);
          await expect.poll(exportConnection, { timeout: 5000 }).toEqual([]);
        },
        { timeout: 20_000 },
      )
      .finally(() => {
        pg.Client.prototype.end = clientEnd;
      });
    expect(ends).toEqual([true]);
  });

  it("ends a download that asks for nothing more for the stall time, and gives its place back", async () => {
    const { exportStream, exportStall } = await import("@/lib/history/export");
    const { exportSlot } = await import("@/lib/history/rows");
    const stall = exportStall.ms;
    // The README's 5 minutes, shortened here.
    expect(stall).toBe(5 * 60_000);
    exportStall.ms = 500;
    try {
      const reader = exportStream("csv", await filters(), "carol@example.com", null, "oldest", exportSlot()!).getReader();
      await reader.read();
      await reader.read();
      expect(await placeFree()).toBe(true);
      // Three more places: with this one held, all four are taken.
      const others = [exportSlot(), exportSlot(), exportSlot()];
      expect(await placeFree()).toBe(false);
      await expect.poll(exportConnection, { timeout: 10_000 }).toEqual([]);
      expect(await placeFree()).toBe(true);
      await expect(reader.read()).rejects.toThrow("the download asked for nothing for 0.5 s");
      for (const release of others) release!();
    } finally {
      exportStall.ms = stall;
    }
  });
});
