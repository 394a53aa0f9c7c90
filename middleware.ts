import { NextResponse, type NextRequest } from "next/server";

/**
 * Passes the requested path to server components, so that a visitor sent to sign in
 * comes back to the page they asked for. Authentication itself happens in each page,
 * action and route (lib/auth/session.ts), never here.
 */
export function middleware(request: NextRequest) {
  const headers = new Headers(request.headers);
  headers.set("x-latchkey-path", `${request.nextUrl.pathname}${request.nextUrl.search}`);
  return NextResponse.next({ request: { headers } });
}

export const config = { matcher: ["/((?!api/|_next/|\\.well-known/|favicon.ico).*)"] };
