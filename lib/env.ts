import { z } from "zod";

/**
 * The one place that reads configuration. Everything else calls `env()`.
 * A bad value stops start-up with a message naming the variable.
 */
const schema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  DATABASE_URL: z.string().url({ message: "must be a postgresql:// URL" }),
  NEXTAUTH_URL: z.string().url().default("http://localhost:3000"),
  NEXTAUTH_SECRET: z.string().min(32, { message: "must be at least 32 characters" }),
  OIDC_ISSUER: z.string().url(),
  OIDC_CLIENT_ID: z.string().min(1),
  OIDC_CLIENT_SECRET: z.string().min(1),
  OIDC_GROUPS_CLAIM: z.string().min(1).default("groups"),
  OIDC_SCOPES: z.string().default("openid email profile groups"),
  OIDC_PROVIDER_NAME: z.string().default("SSO"),
  LATCHKEY_POLICY_FILE: z.string().default("policy/latchkey.yaml"),
  LATCHKEY_ENCRYPTION_KEY: z
    .string()
    .refine((v) => Buffer.from(v, "base64").length === 32, { message: "must be 32 bytes, base64-encoded (openssl rand -base64 32)" }),
  LATCHKEY_TOKEN_ISSUER: z.string().url().optional(),
  LATCHKEY_WORKER: z.enum(["on", "off"]).default("on"),
  LATCHKEY_HAPROXY_SOCKET: z.string().optional(),
  LATCHKEY_HAPROXY_MAP: z.string().optional(),
});

export type Env = z.infer<typeof schema>;

let cached: Env | undefined;

export class ConfigError extends Error {}

export function parseEnv(source: Record<string, string | undefined>): Env {
  const result = schema.safeParse(source);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const name = i.path.join(".");
      return `  ${name}: ${source[name] === undefined ? "is not set" : i.message}`;
    });
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
