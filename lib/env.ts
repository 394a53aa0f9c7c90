import { z } from "zod";
import { integrationSettings } from "./integrations/registry";
import { secretProblem } from "./notifications/signature";

/**
 * The one place that reads configuration. Everything else calls `env()`.
 * A bad value stops start-up with a message naming the variable. The variables of the
 * outside systems are each integration's (its adapter's `settings`, read from
 * lib/integrations/registry.ts), validated here with the rest.
 */
/** Standard Webhooks secrets, `whsec_<base64>`, comma-separated during a rotation (current first). */
function whsecList() {
  return z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      if (v === undefined) return;
      const secrets = v.split(",").map((s) => s.trim());
      secrets.forEach((secret, i) => {
        const problem = secretProblem(secret);
        if (problem) ctx.addIssue({ code: "custom", message: `secret ${i + 1} of ${secrets.length} ${problem}` });
      });
    });
}

const core = {
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  DATABASE_URL: z.string().url({ message: "must be a postgresql:// URL" }),
  NEXTAUTH_URL: z.string().url().default("http://localhost:3000"),
  NEXTAUTH_SECRET: z.string().min(32, { message: "must be at least 32 characters" }),
  // Required in "oidc" auth mode (checked below); unused behind a trusted proxy.
  OIDC_ISSUER: z.string().url().optional(),
  OIDC_CLIENT_ID: z.string().min(1).optional(),
  OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  OIDC_GROUPS_CLAIM: z.string().min(1).default("groups"),
  OIDC_SCOPES: z.string().default("openid email profile groups"),
  OIDC_PROVIDER_NAME: z.string().default("SSO"),
  /** Where groups come from: the ID token, the userinfo endpoint, or "auto" (the ID token when it carries the claim, else userinfo). */
  OIDC_GROUPS_SOURCE: z.enum(["id_token", "userinfo", "auto"], { message: 'must be "id_token", "userinfo" or "auto"' }).default("auto"),
  /** "true": a sign-in needs `email_verified: true`. "false" (providers that never send it): a missing claim passes, `false` is still refused. */
  OIDC_REQUIRE_EMAIL_VERIFIED: z
    .enum(["true", "false"], { message: 'must be "true" or "false"' })
    .default("true")
    .transform((v) => v === "true"),
  LATCHKEY_POLICY_FILE: z.string().default("policy/latchkey.yaml"),
  /** The current key, optionally followed by previous ones, comma-separated (lib/credentials/keyring.ts). */
  LATCHKEY_ENCRYPTION_KEY: z.string().refine((v) => v.split(",").every((k) => Buffer.from(k.trim(), "base64").length === 32), {
    message: "must be 32 bytes, base64-encoded (openssl rand -base64 32); previous keys may follow, comma-separated",
  }),
  /** Previous encryption keys, comma-separated: read, never written with. */
  LATCHKEY_ENCRYPTION_KEY_PREVIOUS: z
    .string()
    .optional()
    .refine((v) => !v || v.split(",").every((k) => Buffer.from(k.trim(), "base64").length === 32), { message: "must be 32-byte base64 keys, comma-separated" }),
  LATCHKEY_TOKEN_ISSUER: z.string().url().optional(),
  /** File outside the database where the worker keeps the audit chain's head, to notice a restore (lib/approvals/restore-fence.ts). */
  LATCHKEY_RESTORE_MARKER: z.string().min(1).optional(),
  LATCHKEY_WORKER: z.enum(["on", "off"]).default("on"),
  /** Port of the lean listener for forward-auth and introspection (lib/authz/listener.ts); unset: off. */
  LATCHKEY_AUTHZ_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** Days an active signing key signs before the worker rotates it; 0 turns scheduled rotation off. */
  LATCHKEY_KEY_ROTATION_DAYS: z.coerce.number().min(0, { message: "must be 0 (off) or a number of days" }).default(30),
  /** How long a new signing key is published in JWKS (and the key directory) before it signs anything. */
  LATCHKEY_KEY_PUBLISH_AHEAD: z
    .string()
    .default("24h")
    .transform((v, ctx) => {
      const seconds = durationSeconds(v);
      if (seconds === null) ctx.addIssue({ code: "custom", message: 'must be a duration such as "90s", "30m", "24h" or "2d" (or 0)' });
      return seconds ?? 0;
    }),
  /** Directory the worker keeps one PEM file per published key in, for verifiers that read files (HAProxy). */
  LATCHKEY_KEY_DIR: z.string().min(1).optional(),
  /** Command the worker runs (sh -c) after the key directory changed, e.g. a proxy reload. */
  LATCHKEY_KEY_HOOK: z.string().min(1).optional(),
  /** URL the worker POSTs a JSON event to after the published keys changed. */
  LATCHKEY_KEY_WEBHOOK_URL: z.string().url().optional(),
  /** HMAC-SHA256 key signing that webhook, as the notification webhooks are signed. */
  /** Signing secrets of the key webhook, `whsec_<base64>`, comma-separated during a rotation (current first). */
  LATCHKEY_KEY_WEBHOOK_SECRET: whsecList(),
  /** Proxies allowed to call /api/forward-auth: "name=secret" pairs separated by commas. */
  LATCHKEY_FORWARD_AUTH_PROXIES: z
    .string()
    .optional()
    .refine((v) => !v || v.split(",").every((pair) => /^[\w.-]+=.{16,}$/.test(pair.trim())), {
      message: 'must be "name=secret" pairs separated by commas, each secret at least 16 characters',
    }),
  /** "oidc": Latchkey signs people in itself. "trusted-proxy": an identity-aware proxy in front does, and asserts who it is. */
  LATCHKEY_AUTH_MODE: z.enum(["oidc", "trusted-proxy"]).default("oidc"),
  LATCHKEY_PROXY_KIND: z.enum(["google-iap", "cloudflare-access", "pomerium", "oauth2-proxy", "custom"]).default("custom"),
  /** The header carrying the proxy's signed assertion; defaults to the one the kind of proxy uses. */
  LATCHKEY_PROXY_HEADER: z.string().min(1).optional(),
  LATCHKEY_PROXY_JWKS_URL: z.string().url().optional(),
  LATCHKEY_PROXY_ISSUER: z.string().min(1).optional(),
  LATCHKEY_PROXY_AUDIENCE: z.string().min(1).optional(),
  LATCHKEY_PROXY_EMAIL_CLAIM: z.string().min(1).default("email"),
  LATCHKEY_PROXY_GROUPS_CLAIM: z.string().min(1).default("groups"),
  LATCHKEY_PROXY_ALGORITHMS: z.string().default("RS256,ES256"),
  /** Rate limits per minute: API calls per token, API calls per address, sign-in attempts per address. */
  LATCHKEY_RATE_LIMIT_TOKEN: z.coerce.number().int().min(1).default(300),
  LATCHKEY_RATE_LIMIT_ADDRESS: z.coerce.number().int().min(1).default(1200),
  LATCHKEY_RATE_LIMIT_SIGNIN: z.coerce.number().int().min(1).default(30),
  /** Signing secrets of the audit webhook, `whsec_<base64>`, comma-separated during a rotation (current first). */
  LATCHKEY_AUDIT_WEBHOOK_SECRET: whsecList(),
  /** Port and address the web server listens on (HOSTNAME: 0.0.0.0 in production, localhost in development). */
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  HOSTNAME: z.string().min(1).optional(),
  /** What the logs say: debug, info, warn or error. */
  LATCHKEY_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"], { message: 'must be "debug", "info", "warn" or "error"' }).default("info"),
  /**
   * Connections each process keeps to PostgreSQL at most (lib/db.ts), and so the transactions it runs
   * at once; the worker's process keeps ten more for its jobs. 10 or more: the portal is tested and
   * measured with 10, and nothing below that.
   */
  LATCHKEY_DB_POOL_SIZE: z.coerce
    .number({ message: "must be a whole number of connections, 10 or more" })
    .int({ message: "must be a whole number of connections, 10 or more" })
    .min(10, { message: "must be at least 10 (the fewest the portal is tested and measured with)" })
    .max(1000, { message: "must be at most 1000" })
    .default(10),
  /** Port of the worker's own listener (/api/health, /metrics); unset: none. */
  LATCHKEY_WORKER_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** Bearer token Prometheus sends to /api/metrics; metrics are off while it is unset. */
  LATCHKEY_METRICS_TOKEN: z.string().min(16, { message: "must be at least 16 characters" }).optional(),
};

/** Latchkey's own variables and every registered integration's, built when read so an integration added at run time (a test's) counts. */
const schema = () => z.object({ ...core, ...integrationSettings() });

export type Env = z.infer<ReturnType<typeof schema>>;

/** Every variable Latchkey reads; the OpenTelemetry SDK reads the standard OTEL_* ones itself. */
export const knownVariables = (): readonly string[] => Object.keys(schema().shape);
export const isKnownVariable = (name: string) => knownVariables().includes(name) || name.startsWith("OTEL_");

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** "90s", "30m", "24h", "2d" or "0", in seconds; null when it is none of those. */
export function durationSeconds(value: string): number | null {
  if (value.trim() === "0") return 0;
  const match = /^(\d+)(s|m|h|d)$/.exec(value.trim());
  return match ? Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS] : null;
}

const MODE_REQUIRES = {
  oidc: ["OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"],
  "trusted-proxy": ["LATCHKEY_PROXY_JWKS_URL", "LATCHKEY_PROXY_ISSUER", "LATCHKEY_PROXY_AUDIENCE"],
} as const;

let cached: Env | undefined;

export class ConfigError extends Error {}

export function parseEnv(source: Record<string, string | undefined>): Env {
  const result = schema().safeParse(source);
  const mode = source.LATCHKEY_AUTH_MODE ?? "oidc";
  const required = mode === "trusted-proxy" ? MODE_REQUIRES["trusted-proxy"] : MODE_REQUIRES.oidc;
  const missing = required.filter((name) => !source[name]).map((name) => `  ${name}: is not set (required when LATCHKEY_AUTH_MODE is ${mode})`);
  if (!result.success || missing.length > 0) {
    const lines = (result.success ? [] : result.error.issues).map((i) => {
      const name = i.path.join(".");
      return `  ${name}: ${source[name] === undefined ? "is not set" : i.message}`;
    });
    lines.push(...missing);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}\nSee the README's table of environment variables.`);
  }
  const { LATCHKEY_KEY_ROTATION_DAYS: days, LATCHKEY_KEY_PUBLISH_AHEAD: ahead } = result.data;
  // The next key must be out before the active one is due, or every rotation would run late.
  if (days > 0 && ahead >= days * 86_400) {
    const lines = [`  LATCHKEY_KEY_PUBLISH_AHEAD: must be shorter than the rotation period (LATCHKEY_KEY_ROTATION_DAYS=${days})`];
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}\nSee the README's table of environment variables.`);
  }
  return result.data;
}

export function env(): Env {
  cached ??= parseEnv(process.env);
  return cached;
}

/** Issuer (`iss`) of the credentials Latchkey signs. */
export function tokenIssuer(): string {
  const e = env();
  return e.LATCHKEY_TOKEN_ISSUER ?? e.NEXTAUTH_URL;
}
