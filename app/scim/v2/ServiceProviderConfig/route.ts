import { serviceProviderConfig } from "@/lib/identity/scim/discovery";
import { scimMethodsNotAllowed, scimRoute } from "@/lib/identity/scim/route";

export const dynamic = "force-dynamic";

/** What Latchkey's SCIM service supports (RFC 7644 §4). */
export const GET = scimRoute({ name: "scim.serviceProviderConfig", run: async () => serviceProviderConfig() });

export const { POST, PUT, PATCH, DELETE, OPTIONS } = scimMethodsNotAllowed("GET");
