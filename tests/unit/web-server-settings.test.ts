import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { KEEP_ALIVE_MS } from "@/lib/http/plain";
import { WEB_SEMI_SPACE_MB, webServerSettings, withWebYoungGeneration } from "@/lib/http/preloads";

/**
 * What scripts/start.ts gives Next.js's server. Its NODE_OPTIONS name a larger young generation
 * than Node.js's default, unless the operator named one; Node.js must accept it there (it refuses
 * to start on an option NODE_OPTIONS does not allow); tests/e2e/standalone-image.test.ts reads it
 * off the running server. Its keep-alive time-out is the lean listener's, unless the operator sets one.
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

/** What scripts/start.ts gives Next.js's server: the README's "Behind a load balancer or proxy" and "Memory" settings, and an operator's own. */
describe("the web server's settings", () => {
  const dir = "/srv/latchkey/lib/http";

  it("keep idle connections 65 s, as the lean listener does, unless the operator sets KEEP_ALIVE_TIMEOUT", () => {
    expect(KEEP_ALIVE_MS).toBe(65_000);
    expect(webServerSettings({}, dir).KEEP_ALIVE_TIMEOUT).toBe("65000");
    expect(webServerSettings({ KEEP_ALIVE_TIMEOUT: "75000" }, dir).KEEP_ALIVE_TIMEOUT).toBe("75000");
  });

  it("give NODE_OPTIONS the operator's own options first, then the preloads, then the young generation", () => {
    expect(webServerSettings({}, dir).NODE_OPTIONS).toBe(
      `--require "${dir}/h2c-preload.cjs" --require "${dir}/supervised-preload.cjs" --max-semi-space-size=${WEB_SEMI_SPACE_MB}`,
    );
    expect(webServerSettings({ NODE_OPTIONS: "--max-old-space-size=2048 --max-semi-space-size=32" }, dir).NODE_OPTIONS).toBe(
      `--max-old-space-size=2048 --max-semi-space-size=32 --require "${dir}/h2c-preload.cjs" --require "${dir}/supervised-preload.cjs"`,
    );
  });
});
