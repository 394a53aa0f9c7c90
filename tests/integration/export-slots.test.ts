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
