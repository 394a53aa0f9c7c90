import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { threadUse, webMainThread } from "../../scripts/support/process-cpu";

describe("bench:approvals' reading of the web server's main thread", () => {
  it("gives time on a CPU per unit of work and the shares of the time between readings on a CPU and waiting for one", () => {
    const before = { atMs: 1_000, onCpuMs: 5_000, waitingMs: 800 };
    const after = { atMs: 21_000, onCpuMs: 19_200, waitingMs: 6_460 };
    // 14,200 ms on a CPU for 1,880 approvals in 20 s, 5,660 ms of it waiting.
    expect(threadUse(before, after, 1_880)).toEqual({ onCpuMsPer: 7.55, onCpuShare: 0.71, waitingShare: 0.28 });
  });

  it("gives nothing without both readings, without work, or with readings out of order", () => {
    const reading = { atMs: 1_000, onCpuMs: 5_000, waitingMs: 800 };
    expect(threadUse(null, reading, 10)).toBeNull();
    expect(threadUse(reading, null, 10)).toBeNull();
    expect(threadUse(reading, { ...reading, atMs: 2_000 }, 0)).toBeNull();
    expect(threadUse({ ...reading, atMs: 2_000 }, reading, 10)).toBeNull();
  });

  it("finds the server's main thread by its process group and name and reads its time on a CPU", async () => {
    if (process.platform !== "linux") return expect(webMainThread(process.pid)).toBeNull();
    // A process named as Next.js's server names itself, in a group of its own, busy on its main thread for 400 ms, then waiting to be stopped.
    const child = spawn(
      process.execPath,
      ["-e", 'process.title = "next-server (v15)"; const end = Date.now() + 400; while (Date.now() < end); console.log("done"); setInterval(() => {}, 1000);'],
      { detached: true, stdio: ["ignore", "pipe", "ignore"] },
    );
    try {
      await once(child, "spawn");
      // This process's own group holds no such server.
      expect(webMainThread(process.pid)).toBeNull();
      await once(child.stdout!, "data");
      const after = webMainThread(child.pid);
      expect(after).not.toBeNull();
      expect(after!.onCpuMs).toBeGreaterThanOrEqual(300);
      expect(after!.waitingMs).toBeGreaterThanOrEqual(0);
      expect(webMainThread(undefined)).toBeNull();
    } finally {
      child.kill();
    }
  });
});
