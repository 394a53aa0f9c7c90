import { ScimError, scimErrorResponse } from "@/lib/identity/scim/errors";

export const dynamic = "force-dynamic";

/**
 * Any other path under /scim/v2 (a resource type Latchkey does not serve, a path with more
 * segments, the base itself): 404 in RFC 7644's error shape, not Next.js's page, so a SCIM
 * client can read why. `/Me`, the alias for the caller's own resource (RFC 7644 §3.11), is
 * answered 501 as the RFC asks of a provider that does not support it: the caller is the
 * provider's service identity, which SCIM never shows. Nothing is looked up, so no token is
 * needed to be told.
 */
async function notAnEndpoint(request: Request): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (/^\/scim\/v2\/Me(\/|$)/.test(pathname))
    return scimErrorResponse(
      new ScimError(501, "Latchkey does not support /Me (RFC 7644 §3.11): the caller is a service identity, which SCIM does not show. Use /Users/{id}."),
    );
  return scimErrorResponse(new ScimError(404, `There is no SCIM endpoint at ${JSON.stringify(pathname.slice(0, 200))}.`));
}

export { notAnEndpoint as GET, notAnEndpoint as POST, notAnEndpoint as PUT, notAnEndpoint as PATCH, notAnEndpoint as DELETE, notAnEndpoint as OPTIONS };
