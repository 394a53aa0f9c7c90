import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startEmbeddedPostgres } from "../../scripts/support/embedded-postgres";
import { sql } from "../helpers/database";
import { processRuns } from "../helpers/processes";

/**
 * npm run dev a second time, after the first was killed without a word (SIGKILL, a crash,
 * the OOM killer): its embedded PostgreSQL, a process of its own, was still running on
 * .data/postgres, and the second start failed on PostgreSQL's lock file. Now the second
 * start stops the server left behind; a server whose starter still runs is refused by name.
 */
const dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-left-behind-"));
// Run as root, the embedded server drops to a user of its own, which must reach its data directory.
chmodSync(dir, 0o755);
const dataDir = path.join(dir, "postgres");
const pidOf = () => Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
let leftOver: number | undefined;
let first: ChildProcess | undefined;

afterAll(async () => {
  first?.kill("SIGKILL");
  // Should the test fail part-way: a fast shutdown, which ends the server's own processes too.
  if (leftOver && processRuns(leftOver)) process.kill(leftOver, "SIGINT");
  for (let i = 0; i < 100 && leftOver && processRuns(leftOver); i++) await new Promise((r) => setTimeout(r, 100));
  rmSync(dir, { recursive: true, force: true });
});
const ownerOf = () => JSON.parse(readFileSync(`${dataDir}.owner`, "utf8")) as { starter: number; postmaster: number };

describe("the embedded PostgreSQL of npm run dev", () => {
  it("is stopped at the next start when the process that started it was killed without a word", { timeout: 120_000 }, async () => {
    // The first npm run dev: a process that starts the server on a persistent data directory, then is killed.
    const script = path.join(dir, "first.mts");
    writeFileSync(
      script,
      `import { startEmbeddedPostgres } from ${JSON.stringify(path.resolve("scripts/support/embedded-postgres.ts"))};
       const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, persistent: true, quiet: true });
       console.log("READY " + pg.adminUrl);
       setInterval(() => {}, 1000);`,
    );
    first = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "inherit"] });
    const started = first;
    const adminUrl = await new Promise<string>((resolve, reject) => {
      let out = "";
      started.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const ready = out.match(/READY (\S+)/);
        if (ready) resolve(ready[1]!);
      });
      started.once("exit", (code) => reject(new Error(`the first start exited (${code}): ${out}`)));
    });
    leftOver = pidOf();
    expect(ownerOf()).toMatchObject({ starter: started.pid, postmaster: leftOver });
    await sql(adminUrl, "CREATE TABLE kept (note text)");
    await sql(adminUrl, "INSERT INTO kept VALUES ('written before the kill')");
    started.kill("SIGKILL");
    await new Promise((r) => started.once("exit", r));
    // What a crash leaves: the server runs on, nobody to stop it.
    expect(processRuns(leftOver)).toBe(true);

    // The second start stops it, starts afresh on the same data, and nothing written is lost.
    const second = await startEmbeddedPostgres({ dataDir, persistent: true, quiet: true });
    try {
      expect(processRuns(leftOver)).toBe(false);
      expect(pidOf()).not.toBe(leftOver);
      expect(ownerOf()).toMatchObject({ starter: process.pid, postmaster: pidOf() });
      expect((await sql(second.adminUrl, "SELECT note FROM kept")).rows).toEqual([{ note: "written before the kill" }]);

      // A third start while the second's starter (this process) still runs is refused, saying whose server it is.
      await expect(startEmbeddedPostgres({ dataDir, persistent: true, quiet: true })).rejects.toThrow(
        new RegExp(`already running \\(process ${pidOf()}\\), started by process ${process.pid}, which is still running: stop that Latchkey first`),
      );
      expect(processRuns(pidOf())).toBe(true);

      // A record that names another server (a start under way, or a server started by hand) is no licence to stop this one.
      const record = ownerOf();
      writeFileSync(`${dataDir}.owner`, JSON.stringify({ ...record, starter: started.pid, postmaster: leftOver }));
      await expect(startEmbeddedPostgres({ dataDir, persistent: true, quiet: true })).rejects.toThrow(
        new RegExp(`already running \\(process ${pidOf()}\\), and not by a Latchkey that has gone: stop it first \\(kill -INT ${pidOf()}\\)`),
      );
      expect(processRuns(pidOf())).toBe(true);
      writeFileSync(`${dataDir}.owner`, JSON.stringify(record));
    } finally {
      await second.stop();
    }
    // Stopped in order, it leaves no mark of an owner behind.
    expect(existsSync(`${dataDir}.owner`)).toBe(false);
  });
});
