/**
 * SCIM clients that send what Okta and Microsoft Entra ID send, call for call, as their
 * published provisioning guides show them (Okta: "SCIM 2.0 protocol reference"; Entra:
 * "Tutorial: Develop and plan provisioning for a SCIM endpoint", request examples). Hosted
 * identity providers cannot be reached from the tests, so these replay their shapes
 * against the real routes: capitalised ops and "False" strings from Entra, path-less
 * replace and member removal by filter from Okta.
 */

const USER = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

export interface ScimAnswer {
  status: number;
  type: string | null;
  /** A SCIM resource or error, read loosely by the tests. */
  body: any;
}

export function scimCaller(baseUrl: string, token: string | null, userAgent: string) {
  return async function call(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<ScimAnswer> {
    const response = await fetch(`${baseUrl}/scim/v2${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        accept: "application/scim+json",
        "user-agent": userAgent,
        ...(body !== undefined ? { "content-type": "application/scim+json; charset=utf-8" } : {}),
        ...extra,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, type: response.headers.get("content-type"), body: text ? JSON.parse(text) : null };
  };
}

const q = (filter: string) => `filter=${encodeURIComponent(filter)}`;

/** Okta's provisioning calls (Okta sends application/scim+json and its own User-Agent). */
export function okta(baseUrl: string, token: string) {
  const call = scimCaller(baseUrl, token, "Okta SCIM Client 1.0.0");
  return {
    call,
    /** Import and the check before a create: look the login up. */
    findUser: (login: string) => call("GET", `/Users?${q(`userName eq "${login}"`)}&startIndex=1&count=100`),
    createUser: (p: { login: string; given: string; family: string; oktaId: string }) =>
      call("POST", "/Users", {
        schemas: [USER],
        userName: p.login,
        name: { givenName: p.given, familyName: p.family },
        emails: [{ primary: true, value: p.login, type: "work" }],
        displayName: `${p.given} ${p.family}`,
        locale: "en-US",
        externalId: p.oktaId,
        groups: [],
        password: "Okta-generated-1!",
        active: true,
      }),
    /** Profile push: Okta sends the whole user with PUT. */
    updateUser: (id: string, p: { login: string; given: string; family: string; oktaId: string; active: boolean }) =>
      call("PUT", `/Users/${id}`, {
        schemas: [USER],
        id,
        userName: p.login,
        name: { givenName: p.given, familyName: p.family },
        emails: [{ primary: true, value: p.login, type: "work" }],
        displayName: `${p.given} ${p.family}`,
        externalId: p.oktaId,
        active: p.active,
      }),
    deactivate: (id: string) => call("PATCH", `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: "replace", value: { active: false } }] }),
    reactivate: (id: string) => call("PATCH", `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: "replace", value: { active: true } }] }),
    findGroup: (name: string) => call("GET", `/Groups?${q(`displayName eq "${name}"`)}&startIndex=1&count=100`),
    /** Group push creates the group empty, then adds its members by PATCH. */
    pushGroup: (name: string) => call("POST", "/Groups", { schemas: [GROUP], displayName: name, members: [] }),
    addMember: (groupId: string, userId: string, login: string) =>
      call("PATCH", `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: "add", path: "members", value: [{ value: userId, display: login }] }] }),
    removeMember: (groupId: string, userId: string) =>
      call("PATCH", `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: "remove", path: `members[value eq "${userId}"]` }] }),
    renameGroup: (groupId: string, name: string) =>
      call("PATCH", `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: "replace", value: { id: groupId, displayName: name } }] }),
    deleteGroup: (groupId: string) => call("DELETE", `/Groups/${groupId}`),
  };
}

/** Microsoft Entra ID's provisioning calls. */
export function entra(baseUrl: string, token: string) {
  const call = scimCaller(baseUrl, token, "Microsoft.Identity.ProvisioningService");
  return {
    call,
    /** The connection test Entra runs on "Test connection": a user that cannot exist. */
    testConnection: () => call("GET", `/Users?${q('userName eq "ffdbbf05-2c7e-4d8b-a2ae-4cf6a4c6b3d5"')}`),
    findUser: (upn: string) => call("GET", `/Users?${q(`userName eq "${upn}"`)}`),
    createUser: (p: { upn: string; mail: string; given: string; family: string; objectId: string; department: string }) =>
      call("POST", "/Users", {
        schemas: [USER, ENTERPRISE],
        externalId: p.objectId,
        userName: p.upn,
        active: true,
        addresses: [{ primary: true, type: "work", formatted: "1 Main St" }],
        displayName: `${p.given} ${p.family}`,
        emails: [{ primary: true, type: "work", value: p.mail }],
        meta: { resourceType: "User" },
        name: { formatted: `${p.given} ${p.family}`, familyName: p.family, givenName: p.given },
        phoneNumbers: [{ primary: true, type: "work", value: "+1 555 0100" }],
        roles: [],
        title: "Engineer",
        [ENTERPRISE]: { employeeNumber: "1001", department: p.department, manager: { value: "mgr-object-id" } },
      }),
    /** Attribute updates: several operations, capitalised, some on extension paths. */
    updateAttributes: (id: string, p: { mail: string; family: string; department: string }) =>
      call("PATCH", `/Users/${id}`, {
        schemas: [PATCH],
        Operations: [
          { op: "Replace", path: 'emails[type eq "work"].value', value: p.mail },
          { op: "Replace", path: "name.familyName", value: p.family },
          { op: "Add", path: `${ENTERPRISE}:department`, value: p.department },
          { op: "Replace", path: 'phoneNumbers[type eq "work"].value', value: "+1 555 0199" },
        ],
      }),
    /** Entra sends "False" as a string unless the app opts in to booleans. */
    disable: (id: string) => call("PATCH", `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: "Replace", path: "active", value: "False" }] }),
    enable: (id: string) => call("PATCH", `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: "Replace", path: "active", value: true }] }),
    deleteUser: (id: string) => call("DELETE", `/Users/${id}`),
    findGroup: (name: string) => call("GET", `/Groups?excludedAttributes=members&${q(`displayName eq "${name}"`)}`),
    createGroup: (name: string, objectId: string) =>
      call("POST", "/Groups", { schemas: [GROUP], externalId: objectId, displayName: name, meta: { resourceType: "Group" } }),
    addMembers: (groupId: string, userIds: string[]) =>
      call("PATCH", `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: "Add", path: "members", value: userIds.map((value) => ({ value })) }] }),
    removeMembers: (groupId: string, userIds: string[]) =>
      call("PATCH", `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: "Remove", path: "members", value: userIds.map((value) => ({ value })) }] }),
    renameGroup: (groupId: string, name: string) =>
      call("PATCH", `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: "Replace", path: "displayName", value: name }] }),
    getGroupWithoutMembers: (groupId: string) => call("GET", `/Groups/${groupId}?excludedAttributes=members`),
  };
}
