import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { WEB_SEMI_SPACE_MB, withWebYoungGeneration } from "@/lib/http/preloads";

/**
 * The web server's NODE_OPTIONS (scripts/start.ts) name a larger young generation than Node.js's
 * default, unless the operator named one; Node.js must accept it there (it refuses to start on an
 * option NODE_OPTIONS does not allow). tests/e2e/standalone-image.test.ts reads it off the running server.
 */
describe("the web server's young generation", () => {
  it("is added to the options the server is given", () => {
    expect(withWebYoungGeneration("")).toBe(`--max-semi-space-size=${WEB_SEMI_SPACE_MB}`);
    expect(withWebYoungGeneration('--require "/srv/lib/http/h2c-preload.cjs"')).toBe(
      `--require "/srv/lib/http/h2c-preload.cjs" --max-semi-space-size=${WEB_SEMI_SPACE_MB}`,
    );
  });

  it("keeps an operator's own setting, in either spelling, and adds no second one", () => {
    for (const own of ["--max-semi-space-size=16", "--max-old-space-size=2048 --max-semi-space-size 8"]) {
      expect(withWebYoungGeneration(own)).toBe(own);
    }
    // A similar option is not the same one.
    expect(withWebYoungGeneration("--max-old-space-size=2048")).toBe(`--max-old-space-size=2048 --max-semi-space-size=${WEB_SEMI_SPACE_MB}`);
  });

  it("is an option Node.js takes from NODE_OPTIONS", () => {
    const run = spawnSync(process.execPath, ["-e", "console.log('started')"], {
      env: { ...process.env, NODE_OPTIONS: withWebYoungGeneration("") },
      encoding: "utf8",
    });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe("started");
  });
});
