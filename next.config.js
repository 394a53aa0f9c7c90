/** @type {import('next').NextConfig} */

// HSTS only where the portal is served over HTTPS (read when the server starts).
const https = (process.env.NEXTAUTH_URL ?? "").startsWith("https://");
// Server actions are refused unless their Origin is the portal's own host or one listed here
// (host names, e.g. "latchkey.example.com", when a proxy in front rewrites the Host header).
const allowedOrigins = (process.env.LATCHKEY_ALLOWED_ORIGINS ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);

const common = [
  { key: "X-Frame-Options", value: "DENY" },
  { key: "X-Content-Type-Options", value: "nosniff" },
  { key: "Referrer-Policy", value: "no-referrer" },
  { key: "Permissions-Policy", value: "camera=(), microphone=(), geolocation=(), payment=()" },
  { key: "Cross-Origin-Opener-Policy", value: "same-origin" },
  ...(https ? [{ key: "Strict-Transport-Security", value: "max-age=63072000; includeSubDomains" }] : []),
];

const nextConfig = {
  reactStrictMode: true,
  // `npm run lint` checks the whole codebase (and `npm test` runs it); the build does not lint again.
  eslint: { ignoreDuringBuilds: true },
  poweredByHeader: false,
  // One directory holds the whole application (server.js, traced node_modules); scripts/build-server.mjs adds the entry.
  output: "standalone",
  // Metadata (the page title) is rendered into <head> before the page is sent, for every
  // browser, instead of streamed after it into a hidden outlet in <body>.
  htmlLimitedBots: /.*/,
  // Server-only packages that must not be bundled (native bindings, wasm, worker threads, one registry a process).
  serverExternalPackages: [
    "pg",
    "pg-boss",
    "@prisma/client",
    "@prisma/adapter-pg",
    "pino",
    "prom-client",
    "@opentelemetry/sdk-trace-node",
    "@opentelemetry/exporter-trace-otlp-http",
    "@opentelemetry/resources",
  ],
  experimental: { serverActions: { allowedOrigins, bodySizeLimit: "256kb" } },
  async headers() {
    return [
      { source: "/:path*", headers: common },
      // Pages get a nonce-based policy from middleware.ts; API answers are data and never render.
      { source: "/api/:path*", headers: [{ key: "Content-Security-Policy", value: "default-src 'none'; frame-ancestors 'none'" }] },
      { source: "/.well-known/:path*", headers: [{ key: "Content-Security-Policy", value: "default-src 'none'; frame-ancestors 'none'" }] },
    ];
  },
};

export default nextConfig;
