import { describe, expect, it } from "vitest";
import { together } from "../../scripts/support/bench-figures";

describe("bench:approvals' floor taken in two halves", () => {
  it("gives units a second over both halves' time, and CPU and collection time per unit weighted by each half's units", () => {
    const before = {
      units: 3000,
      seconds: 10,
      cpu: { web: 3, worker: 0.1, postgres: 0.3, client: 1 },
      gc: { minor: { collections: 20, msPerApproval: 0.2 } },
    };
    const after = {
      units: 1000,
      seconds: 5,
      cpu: { web: 4, worker: 0.5, postgres: 0.7, client: 2 },
      gc: { minor: { collections: 10, msPerApproval: 0.4 }, major: { collections: 1, msPerApproval: 0.04 } },
    };
    expect(together([before, after])).toEqual({
      // 4,000 pairs in 15 s: not the halves' rates averaged (300 and 200 give 250).
      unitsPerSecond: 266.7,
      cpu: { web: 3.25, worker: 0.2, postgres: 0.4, client: 1.25 },
      gc: { minor: { collections: 30, msPerApproval: 0.25 }, major: { collections: 1, msPerApproval: 0.01 } },
    });
  });

  it("keeps a role unknown when one half could not read it, and is the half itself when alone", () => {
    const half = { units: 500, seconds: 2, cpu: { web: 3, worker: null, postgres: 0.3, client: 1 }, gc: {} };
    expect(together([half, { ...half, cpu: { ...half.cpu, worker: 0.2 } }]).cpu.worker).toBeNull();
    expect(together([half])).toEqual({ unitsPerSecond: 250, cpu: half.cpu, gc: {} });
  });
});
