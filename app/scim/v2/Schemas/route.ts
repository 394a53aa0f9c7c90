import { schemas } from "@/lib/identity/scim/discovery";
import { scimMethodsNotAllowed, scimRoute } from "@/lib/identity/scim/route";

export const dynamic = "force-dynamic";

export const GET = scimRoute({ name: "scim.schemas", run: async () => schemas() });

export const { POST, PUT, PATCH, DELETE, OPTIONS } = scimMethodsNotAllowed("GET");
