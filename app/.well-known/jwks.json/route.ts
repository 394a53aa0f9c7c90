import { publicJwks } from "@/lib/credentials/keys";

export const dynamic = "force-dynamic";

/** Public keys that verify the credentials Latchkey issues. */
export async function GET() {
  return Response.json(await publicJwks(), { headers: { "cache-control": "public, max-age=300" } });
}
