import { schemas } from "@/lib/identity/scim/discovery";
import { scimRoute } from "@/lib/identity/scim/route";

export const dynamic = "force-dynamic";

export const GET = scimRoute({ name: "scim.schemas", run: async () => schemas() });
