import { ScimError, scimErrorResponse } from "@/lib/identity/scim/errors";

export const dynamic = "force-dynamic";

/**
 * Any other path under /scim/v2 (a resource type Latchkey does not serve, a path with more
 * segments, the base itself): 404 in RFC 7644's error shape, not Next.js's page, so a SCIM
 * client can read why. Nothing is looked up, so no token is needed to be told.
 */
async function notAnEndpoint(request: Request): Promise<Response> {
  const { pathname } = new URL(request.url);
  return scimErrorResponse(new ScimError(404, `There is no SCIM endpoint at ${JSON.stringify(pathname.slice(0, 200))}.`));
}

export { notAnEndpoint as GET, notAnEndpoint as POST, notAnEndpoint as PUT, notAnEndpoint as PATCH, notAnEndpoint as DELETE, notAnEndpoint as OPTIONS };
