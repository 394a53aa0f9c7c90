import NextAuth from "next-auth";
import type { NextRequest } from "next/server";
import { contextOf, withAuditContext } from "@/lib/audit/context";
import { authOptions } from "@/lib/auth/options";
import { env } from "@/lib/env";

// Options are built per request so configuration is read at run time, not at build time.
type Ctx = { params: Promise<{ nextauth: string[] }> };

async function handler(req: NextRequest, ctx: Ctx): Promise<Response> {
  // Behind a trusted identity-aware proxy Latchkey runs no sign-in of its own.
  if (env().LATCHKEY_AUTH_MODE === "trusted-proxy") return Response.json({ error: "Sign-in is handled by the identity-aware proxy in front of Latchkey." }, { status: 404 });
  // Sign-in and sign-out events carry the caller's address and user agent.
  return withAuditContext(contextOf(req.headers, `auth:${req.nextUrl.pathname.replace(/^\/api\/auth\//, "")}`), () => NextAuth(req as never, ctx as never, authOptions()) as Promise<Response>);
}

export { handler as GET, handler as POST };
