import { introspect } from "@/lib/authz/introspection";
import { toResponse } from "@/lib/http/plain";

export const dynamic = "force-dynamic";

/** RFC 7662 token introspection for resource servers (lib/authz/introspection.ts). */
export async function POST(request: Request): Promise<Response> {
  return toResponse(await introspect(request));
}
