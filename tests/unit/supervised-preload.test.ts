import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * lib/http/supervised-preload.cjs in a process that behaves as Next.js's server does where
 * it matters here: it logs every uncaught error with console.error and keeps running, and
 * it stops on SIGTERM. Whoever reads its output goes away; the process must stop too.
 */
const preload = path.join(process.cwd(), "lib/http/supervised-preload.cjs");
const SERVER_LIKE = `
  process.on("uncaughtException", (error) => console.error(error));
  process.on("SIGTERM", () => process.exit(0));
  setInterval(() => console.log("still serving"), 20);
`;

function start(withPreload: boolean, ipc: boolean) {
  const child = spawn(process.execPath, [...(withPreload ? ["--require", preload] : []), "-e", SERVER_LIKE], {
    stdio: ["ignore", "pipe", "pipe", ...(ipc ? (["ipc"] as const) : [])],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const cpuSeconds = async () => {
    const { readFile } = await import("node:fs/promises");
    const fields = (await readFile(`/proc/${child.pid}/stat`, "utf8")).replace(/^.*\) /, "").split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };
  return { child, exited, cpuSeconds };
}

async function outcome(exited: Promise<number | null>, ms: number): Promise<"exited" | "running"> {
  return Promise.race([exited.then(() => "exited" as const), new Promise<"running">((r) => setTimeout(() => r("running"), ms))]);
}

describe("a supervised server whose supervisor goes away", () => {
  it("stops when the pipe its output goes to breaks, instead of logging the failure to log, forever", async () => {
    const { child, exited } = start(true, false);
    await new Promise((r) => child.stdout!.once("data", r));
    child.stdout!.destroy();
    child.stderr!.destroy();
    expect(await outcome(exited, 5_000)).toBe("exited");
  });

  it("stops when its supervisor's IPC channel closes, even with nothing to write", async () => {
    const { child, exited } = start(true, true);
    await new Promise((r) => child.stdout!.once("data", r));
    child.disconnect();
    expect(await outcome(exited, 5_000)).toBe("exited");
  });

  it("without it, such a process lives on and spins on its broken pipe (what the preload is for)", async () => {
    const { child, exited, cpuSeconds } = start(false, false);
    await new Promise((r) => child.stdout!.once("data", r));
    child.stdout!.destroy();
    child.stderr!.destroy();
    try {
      expect(await outcome(exited, 2_000)).toBe("running");
      const before = await cpuSeconds();
      await new Promise((r) => setTimeout(r, 1_000));
      // A process printing a line every 20 ms uses a few ms of CPU a second; this one uses most of a core.
      expect((await cpuSeconds()) - before).toBeGreaterThan(0.3);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
