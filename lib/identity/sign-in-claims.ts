import { claimValue, groupsFromClaims } from "../auth/groups";

/**
 * What the identity provider said at a sign-in, read the same way for new and returning
 * people: the ID token's claims, with the userinfo endpoint's where the configuration asks
 * for them or the ID token lacks them (Entra ID and some Okta set-ups send groups only
 * there). Pure, so the rules are tested without a provider.
 */
export type GroupsSource = "id_token" | "userinfo" | "auto";

export interface ClaimSettings {
  groupsClaim: string;
  groupsSource: GroupsSource;
  requireEmailVerified: boolean;
}

/** Whether the userinfo endpoint must be asked, given the ID token's claims. */
export function needsUserinfo(idClaims: Record<string, unknown>, settings: ClaimSettings): boolean {
  if (settings.groupsSource === "userinfo") return true;
  if (settings.groupsSource === "id_token") return false;
  return claimValue(idClaims, settings.groupsClaim) === undefined || idClaims.email === undefined;
}

export interface MergedClaims {
  claims: Record<string, unknown>;
  groupsFrom: "id_token" | "userinfo";
}

/**
 * The ID token's claims win for identity (they are signed and bound to this sign-in); the
 * userinfo answer fills what the ID token lacks, and gives the groups when configured to or
 * when the ID token carries none.
 */
export function mergeClaims(idClaims: Record<string, unknown>, userinfo: Record<string, unknown> | null, settings: ClaimSettings): MergedClaims {
  if (!userinfo) return { claims: idClaims, groupsFrom: "id_token" };
  const claims: Record<string, unknown> = { ...userinfo, ...idClaims };
  const top = settings.groupsClaim in idClaims || settings.groupsClaim in userinfo ? settings.groupsClaim : settings.groupsClaim.split(".")[0]!;
  const fromUserinfo = settings.groupsSource === "userinfo" || claimValue(idClaims, settings.groupsClaim) === undefined;
  if (fromUserinfo) {
    if (userinfo[top] === undefined) delete claims[top];
    else claims[top] = userinfo[top];
  }
  return { claims, groupsFrom: fromUserinfo ? "userinfo" : "id_token" };
}

export type SignInRefusal = "NoEmail" | "EmailNotVerified";

export type SignInAnswer = { ok: true; email: string; name: string; groups: string[] } | { ok: false; error: SignInRefusal; email?: string };

/** The person the answer names, or why it cannot sign anyone in. */
export function readSignInAnswer(claims: Record<string, unknown>, settings: ClaimSettings): SignInAnswer {
  const email = typeof claims.email === "string" ? claims.email.trim().toLowerCase() : "";
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) return { ok: false, error: "NoEmail" };
  // Some providers (Amazon Cognito) send the flag as a string.
  const verified = claims.email_verified === true || claims.email_verified === "true";
  const denied = claims.email_verified === false || claims.email_verified === "false";
  if (denied || (settings.requireEmailVerified && !verified)) return { ok: false, error: "EmailNotVerified", email };
  const name = typeof claims.name === "string" && claims.name.trim() ? claims.name.trim() : email;
  return { ok: true, email, name, groups: groupsFromClaims(claims, settings.groupsClaim) };
}
