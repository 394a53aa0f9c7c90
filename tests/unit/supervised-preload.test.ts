import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { processRuns } from "../helpers/processes";

/**
 * lib/http/supervised-preload.cjs in a process that behaves as Next.js's server does where
 * it matters here: it logs every uncaught error with console.error and keeps running, and
 * it stops on SIGTERM. Whoever reads its output goes away; the process must stop too.
 * It is loaded as scripts/start.ts loads it, through NODE_OPTIONS.
 */
const preload = path.join(process.cwd(), "lib/http/supervised-preload.cjs");
const SERVER_LIKE = `
  console.log(JSON.stringify({ nodeOptions: process.env.NODE_OPTIONS ?? "" }));
  process.on("uncaughtException", (error) => console.error(error));
  process.on("SIGTERM", () => process.exit(0));
  setInterval(() => console.log("still serving"), 20);
`;
/** Says one line and has nothing more to do. */
const SHORT_LIVED = `console.log(JSON.stringify({ nodeOptions: process.env.NODE_OPTIONS ?? "" }));`;

function start(options: { preload: boolean; ipc: boolean; script?: string }) {
  const child = spawn(process.execPath, ["-e", options.script ?? SERVER_LIKE], {
    stdio: ["ignore", "pipe", "pipe", ...(options.ipc ? (["ipc"] as const) : [])],
    env: { ...process.env, NODE_OPTIONS: options.preload ? `--require ${JSON.stringify(preload)}` : "" },
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const firstLine = new Promise<{ nodeOptions: string }>((resolve) =>
    child.stdout!.once("data", (chunk: Buffer) => resolve(JSON.parse(chunk.toString().split("\n")[0]!))),
  );
  const cpuSeconds = async () => {
    const fields = (await readFile(`/proc/${child.pid}/stat`, "utf8")).replace(/^.*\) /, "").split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };
  return { child, exited, firstLine, cpuSeconds };
}

async function outcome(exited: Promise<number | null>, ms = 3_000): Promise<"exited" | "running"> {
  return Promise.race([exited.then(() => "exited" as const), new Promise<"running">((r) => setTimeout(() => r("running"), ms))]);
}

describe("a supervised server whose supervisor goes away", { timeout: 15_000 }, () => {
  it("stops when the pipe its output goes to breaks, instead of logging the failure to log, forever", async () => {
    const { child, exited, firstLine } = start({ preload: true, ipc: false });
    try {
      await firstLine;
      child.stdout!.destroy();
      child.stderr!.destroy();
      expect(await outcome(exited)).toBe("exited");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("stops when its supervisor's IPC channel closes, while its output still reaches the supervisor", async () => {
    const { child, exited, firstLine } = start({ preload: true, ipc: true });
    try {
      await firstLine;
      child.disconnect();
      expect(await outcome(exited)).toBe("exited");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("started without an IPC channel (next dev), stops when its parent is killed, though its output goes elsewhere", async () => {
    // A parent that starts the server-like process as scripts/serve.ts does (naming itself), with its output to /dev/null
    // (no pipe to break), says its pid, and waits.
    const parent = spawn(
      process.execPath,
      [
        "-e",
        `const c = require("node:child_process").spawn(process.execPath, ["-e", ${JSON.stringify(SERVER_LIKE)}], { stdio: "ignore", env: { ...process.env, LATCHKEY_SUPERVISOR_PID: String(process.pid), NODE_OPTIONS: ${JSON.stringify(`--require ${JSON.stringify(preload)}`)} } });
         console.log(c.pid); setInterval(() => {}, 1000);`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const child = Number(await new Promise<string>((resolve) => parent.stdout!.once("data", (chunk: Buffer) => resolve(chunk.toString().trim()))));
    try {
      await new Promise((r) => setTimeout(r, 500));
      expect(processRuns(child)).toBe(true);
      parent.kill("SIGKILL");
      const deadline = Date.now() + 5_000;
      while (processRuns(child) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(processRuns(child)).toBe(false);
    } finally {
      parent.kill("SIGKILL");
      if (processRuns(child)) process.kill(child, "SIGKILL");
    }
  });

  it("does not keep a process alive by its watch, nor pass itself on to processes it starts", async () => {
    const { child, exited, firstLine } = start({ preload: true, ipc: true, script: SHORT_LIVED });
    try {
      expect((await firstLine).nodeOptions).not.toContain("supervised-preload");
      // Nothing left to do: it ends, though its IPC channel is open and watched.
      expect(await outcome(exited)).toBe("exited");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("without it, such a process lives on and spins on its broken pipe (what the preload is for)", async () => {
    const { child, exited, firstLine, cpuSeconds } = start({ preload: false, ipc: false });
    try {
      await firstLine;
      child.stdout!.destroy();
      child.stderr!.destroy();
      expect(await outcome(exited, 2_000)).toBe("running");
      const before = await cpuSeconds();
      await new Promise((r) => setTimeout(r, 1_000));
      // A process printing a line every 20 ms uses a few ms of CPU a second; this one uses a large part of a core.
      expect((await cpuSeconds()) - before).toBeGreaterThan(0.1);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
