import { resourceTypeById } from "@/lib/identity/scim/discovery";
import { scimMethodsNotAllowed, scimRoute } from "@/lib/identity/scim/route";

export const dynamic = "force-dynamic";

export const GET = scimRoute({ name: "scim.resourceType", run: async (_who, { params }) => resourceTypeById(params.id!) });

export const { POST, PUT, PATCH, DELETE, OPTIONS } = scimMethodsNotAllowed("GET");
