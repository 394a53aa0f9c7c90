import { describe, expect, it } from "vitest";
import { episodes } from "../../scripts/support/bench-figures";

describe("bench:approvals' tail by episode", () => {
  it("groups slow approvals each returning within 300 ms of the one before, in time order, whatever order they are given in", () => {
    const slow = [
      { at: 7_600, ms: 230.04 }, // the slowest, neither first nor last of its episode
      { at: 7_450, ms: 180 },
      { at: 7_480, ms: 210 },
      { at: 12_000, ms: 104 },
      { at: 7_880, ms: 150 }, // 280 ms after 7,600: same episode
      { at: 8_200, ms: 120 }, // 320 ms after 7,880: a new one
    ];
    expect(episodes(slow)).toEqual([
      { fromSecond: 7.5, atSecond: 7.9, approvals: 4, slowestMs: 230 },
      { fromSecond: 8.2, atSecond: 8.2, approvals: 1, slowestMs: 120 },
      { fromSecond: 12, atSecond: 12, approvals: 1, slowestMs: 104 },
    ]);
  });

  it("keeps calls spread out apart, chains an episode longer than the gap, and has nothing to group when nothing was slow", () => {
    const spread = [0, 1_000, 2_000].map((at) => ({ at, ms: 90 }));
    expect(episodes(spread)).toHaveLength(3);
    expect(episodes(spread, 1_000)).toEqual([{ fromSecond: 0, atSecond: 2, approvals: 3, slowestMs: 90 }]);
    expect(episodes([])).toEqual([]);
  });
});
