import { readdirSync, statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { sendWebResponse, toWebRequest } from "@/lib/http/node-adapter";

/**
 * The route handlers under app/api, served by a plain node:http server the way Next.js
 * calls them (a web Request in, a Response out, params from the dynamic segments), so
 * real clients (the CLI, nginx, fetch) can be pointed at them without building the app.
 */

type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
const appDir = path.join(process.cwd(), "app");

export interface RouteFile {
  /** URL path template, e.g. /api/v1/requests/[id]. */
  template: string;
  file: string;
  pattern: RegExp;
  paramNames: string[];
}

export function routeFiles(under = "api"): RouteFile[] {
  const found: RouteFile[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (entry === "route.ts") {
        const template = `/${path.relative(appDir, dir).split(path.sep).join("/")}`;
        const paramNames: string[] = [];
        const segments = template.split("/");
        // An optional catch-all, always the last segment ([[...rest]]): the rest of the path, or nothing.
        const rest = segments.at(-1)!.match(/^\[\[\.\.\.(\w+)\]\]$/);
        if (rest) segments.pop();
        const source = segments
          .map((seg) => {
            const m = seg.match(/^\[(\w+)\]$/);
            if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
            paramNames.push(m[1]!);
            return "([^/]+)";
          })
          .join("/");
        if (rest) paramNames.push(rest[1]!);
        found.push({ template, file: full, pattern: new RegExp(`^${source}${rest ? "(?:/(.*))?" : ""}$`), paramNames });
      }
    }
  };
  walk(path.join(appDir, under));
  return found;
}

export type RouteModule = Partial<
  Record<Method, ((request: Request, context: { params: Promise<Record<string, string>> }) => Promise<Response> | Response) & { scope?: string }>
>;

export async function loadRoutes(under = "api") {
  const files = routeFiles(under);
  // Static segments win over dynamic ones, and optional catch-alls come last, as in Next.js.
  const rank = (f: RouteFile) => (f.template.includes("[[...") ? 1000 : f.paramNames.length);
  files.sort((a, b) => rank(a) - rank(b));
  return Promise.all(files.map(async (f) => ({ ...f, module: (await import(f.file)) as RouteModule })));
}

export async function startApiServer(under: string | string[] = "api"): Promise<{ url: string; close: () => Promise<void> }> {
  const routes = (await Promise.all([...[under].flat(), ".well-known"].map((dir) => loadRoutes(dir)))).flat();
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
      // Next.js redirects a path with a trailing slash to the path without it (trailingSlash: false), whatever the method.
      if (url.pathname.length > 1 && url.pathname.endsWith("/")) {
        // Repeated slashes are one, as Next.js tidies them, so the Location never names another host ("//host").
        res.writeHead(308, { location: `${url.pathname.replace(/\/{2,}/g, "/").replace(/\/+$/, "") || "/"}${url.search}` }).end();
        return;
      }
      const route = routes.find((r) => r.pattern.test(url.pathname));
      const handler = route?.module[(req.method ?? "GET") as Method];
      if (!route || !handler) {
        res.writeHead(route ? 405 : 404).end();
        return;
      }
      const match = url.pathname.match(route.pattern)!;
      let params: Record<string, string>;
      try {
        params = Object.fromEntries(route.paramNames.map((n, i) => [n, match[i + 1] === undefined ? "" : decodeURIComponent(match[i + 1]!)]));
      } catch {
        // Next.js answers a path segment that is not valid percent-encoded UTF-8 with 400 before any route runs.
        res.writeHead(400).end("Bad Request");
        return;
      }
      const request = await toWebRequest(req, url.origin);
      await sendWebResponse(res, await handler(request, { params: Promise.resolve(params) }));
    } catch (error) {
      console.error(error);
      res.writeHead(500).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
