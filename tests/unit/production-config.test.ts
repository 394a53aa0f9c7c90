import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { productionProblems } from "@/lib/config/production";
import { isKnownVariable, parseEnv } from "@/lib/env";
import { tracingEnabled } from "@/lib/observability/tracing";
import { REQUEST_ID_PATTERN } from "@/lib/observability/request-id";

describe("what production needs before it starts", () => {
  it("names a missing database and a missing identity provider, and accepts trusted-proxy mode without one", () => {
    expect(productionProblems({})).toEqual([expect.stringMatching(/^DATABASE_URL is not set/), expect.stringMatching(/^OIDC_ISSUER is not set/)]);
    expect(productionProblems({ DATABASE_URL: "postgresql://db/latchkey" })).toEqual([expect.stringMatching(/^OIDC_ISSUER is not set/)]);
    expect(productionProblems({ DATABASE_URL: "postgresql://db/latchkey", LATCHKEY_AUTH_MODE: "trusted-proxy" })).toEqual([]);
    expect(productionProblems({ DATABASE_URL: "postgresql://db/latchkey", OIDC_ISSUER: "https://idp.example.com" })).toEqual([]);
  });

  it("refuses the example overlay's placeholders and its all-zero encryption key, naming each variable", () => {
    const base = { DATABASE_URL: "postgresql://db/latchkey", OIDC_ISSUER: "https://idp.example.com" };
    const example = Object.fromEntries(
      readFileSync("deploy/kubernetes/overlays/example/secrets.env", "utf8")
        .split("\n")
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    const problems = productionProblems({ ...base, ...example });
    for (const name of ["NEXTAUTH_SECRET", "OIDC_CLIENT_SECRET", "LATCHKEY_METRICS_TOKEN"])
      expect(problems, name).toContainEqual(expect.stringMatching(new RegExp(`^${name} still holds the example's placeholder`)));
    expect(problems).toContainEqual(expect.stringMatching(/^LATCHKEY_ENCRYPTION_KEY holds a key of zero bytes/));
    expect(
      productionProblems({ ...base, LATCHKEY_ENCRYPTION_KEY: `${Buffer.alloc(32, 7).toString("base64")},${Buffer.alloc(32).toString("base64")}` }),
    ).toEqual([expect.stringMatching(/^LATCHKEY_ENCRYPTION_KEY holds a key of zero bytes/)]);
    expect(productionProblems({ ...base, LATCHKEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64") })).toEqual([]);
  });
});

describe("the database pool", () => {
  const base = {
    DATABASE_URL: "postgresql://db/latchkey",
    NEXTAUTH_SECRET: "x".repeat(32),
    LATCHKEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64"),
    OIDC_ISSUER: "https://idp.example.com",
    OIDC_CLIENT_ID: "latchkey",
    OIDC_CLIENT_SECRET: "secret",
  };
  const problem = (value: string) => {
    try {
      parseEnv({ ...base, LATCHKEY_DB_POOL_SIZE: value });
      return null;
    } catch (error) {
      return (error as Error).message;
    }
  };

  it("keeps 10 connections a process unless LATCHKEY_DB_POOL_SIZE says otherwise, and refuses fewer", () => {
    expect(parseEnv(base).LATCHKEY_DB_POOL_SIZE).toBe(10);
    expect(parseEnv({ ...base, LATCHKEY_DB_POOL_SIZE: "25" }).LATCHKEY_DB_POOL_SIZE).toBe(25);
    expect(parseEnv({ ...base, LATCHKEY_DB_POOL_SIZE: "10" }).LATCHKEY_DB_POOL_SIZE).toBe(10);
    expect(problem("9")).toContain("LATCHKEY_DB_POOL_SIZE: must be at least 10 (the fewest the portal is tested and measured with)");
    expect(problem("0")).toContain("LATCHKEY_DB_POOL_SIZE: must be at least 10");
    for (const value of ["ten", "12.5"]) expect(problem(value), value).toContain("LATCHKEY_DB_POOL_SIZE: must be a whole number of connections, 10 or more");
    expect(problem("-20")).toContain("LATCHKEY_DB_POOL_SIZE: must be at least 10");
    expect(problem("1001")).toContain("LATCHKEY_DB_POOL_SIZE: must be at most 1000");
    expect(isKnownVariable("LATCHKEY_DB_POOL_SIZE")).toBe(true);
  });
});

describe("tracing", () => {
  it("is on only when the standard OTEL_* variables ask for an exporter, and off when they say so", () => {
    expect(tracingEnabled({})).toBe(false);
    expect(tracingEnabled({ OTEL_SERVICE_NAME: "latchkey" })).toBe(false);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(true);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" })).toBe(true);
    expect(tracingEnabled({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" })).toBe(false);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_TRACES_EXPORTER: "none" })).toBe(false);
  });
});

describe("known variables and request ids", () => {
  it("know lib/env.ts's variables and the OpenTelemetry ones, and nothing else", () => {
    for (const name of ["DATABASE_URL", "PORT", "HOSTNAME", "LATCHKEY_LOG_LEVEL", "LATCHKEY_WORKER_PORT", "OTEL_SERVICE_NAME"])
      expect(isKnownVariable(name), name).toBe(true);
    for (const name of ["DATABASE_URI", "LATCHKEY_LOGLEVEL", "OTEL"]) expect(isKnownVariable(name), name).toBe(false);
  });

  it("keep a proxy's id only when it looks like one", () => {
    for (const id of ["0f8fad5b-d9cb-469f-a165-70867728950e", "proxy-4711-abcdef", "Root=1-67891233-abcdef012345678912345678"])
      expect(REQUEST_ID_PATTERN.test(id), id).toBe(true);
    for (const id of ["short", "has space inside", "line\nbreak-0000", 'quote"-00000000', "x".repeat(129)]) expect(REQUEST_ID_PATTERN.test(id), id).toBe(false);
  });
});
