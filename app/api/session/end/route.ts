import { sessionRoute } from "@/lib/api/session-route";
import { endSessionUrl } from "@/lib/auth/end-session";

export const dynamic = "force-dynamic";

/** GET /api/session/end: where sign-out continues at the identity provider (RP-initiated logout), for the signed-in person. */
export const GET = sessionRoute("session.end", async (who) => ({ url: await endSessionUrl(who.id) }));
