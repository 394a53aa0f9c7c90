import { randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import { exportJWK, generateKeyPair } from "jose";
import { DEMO_PASSWORD, DEMO_USERS, type DemoUser } from "./demo-users";

/**
 * A real OpenID Provider (the certified `oidc-provider` package) with the demo users, for
 * development and end-to-end tests. Authorization code flow with PKCE required; the
 * groups claim is released in the ID token, as Okta and Keycloak can be configured to.
 *
 * Its directory can change while it runs, as a real one does: a person's groups, their
 * e-mail's verified flag, claims left out, new people, and whether claims appear only at
 * the userinfo endpoint (as Entra ID and some Okta set-ups send groups). Changes come
 * through `directory` in the same process, or through a JSON file (`directoryFile`,
 * re-read at every sign-in) from another one.
 */
export interface DirectoryEntry {
  name?: string;
  /** A list, or one string as some providers send it. */
  groups?: string[] | string;
  /** The `email_verified` claim; null leaves it out. Default true. */
  emailVerified?: boolean | null;
  /** Claims left out of every answer. */
  omit?: ("email" | "groups" | "name")[];
}

export interface DirectoryState {
  /** Changes to demo users, or new people, by e-mail. */
  users?: Record<string, DirectoryEntry>;
  /** The ID token carries only `sub`; everything else is served at userinfo. */
  claimsOnlyAtUserinfo?: boolean;
}

export interface LocalDirectory {
  /** Changes one person (merged over what was set before). */
  setUser(email: string, entry: DirectoryEntry): void;
  setClaimsOnlyAtUserinfo(on: boolean): void;
  reset(): void;
}

export interface LocalIdpOptions {
  port: number;
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  /** Where RP-initiated logout may send the browser back to (the portal's sign-in page). */
  postLogoutRedirectUris?: string[];
  users?: readonly DemoUser[];
  /** A JSON file holding a DirectoryState, read at every sign-in; changes in it apply at once. */
  directoryFile?: string;
}

export interface RunningIdp {
  issuer: string;
  directory: LocalDirectory;
  close(): Promise<void>;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function loginPage(uid: string, clientName: string, users: readonly DemoUser[], error?: string, email = ""): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · Local IdP</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;background:#f1f5f9;color:#0f172a;display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0}
main{background:#fff;border:1px solid #e2e8f0;border-radius:12px;padding:32px;width:360px;box-shadow:0 1px 3px rgba(0,0,0,.06)}
h1{font-size:20px;margin:0 0 4px}p{color:#475569;font-size:14px;margin:0 0 20px}
label{display:block;font-size:14px;font-weight:600;margin:12px 0 4px}
input{width:100%;box-sizing:border-box;padding:8px 10px;border:1px solid #cbd5e1;border-radius:6px;font-size:15px}
button{margin-top:20px;width:100%;padding:10px;border:0;border-radius:6px;background:#0f172a;color:#fff;font-size:15px;font-weight:600;cursor:pointer}
.error{background:#fef2f2;color:#b91c1c;border:1px solid #fecaca;padding:8px 10px;border-radius:6px;font-size:14px;margin-bottom:8px}
details{margin-top:20px;font-size:13px;color:#475569}code{font-size:12px}
</style></head><body><main>
<h1>Local identity provider</h1><p>Development sign-in for <strong>${escapeHtml(clientName)}</strong>.</p>
${error ? `<div class="error" role="alert">${escapeHtml(error)}</div>` : ""}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label for="email">E-mail</label><input id="email" name="email" type="email" required autofocus value="${escapeHtml(email)}">
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit">Sign in</button></form>
<details><summary>Demo users (password <code>latchkey</code>)</summary><ul>
${users.map((u) => `<li><code>${escapeHtml(u.email)}</code> · ${escapeHtml(u.groups.join(", "))}</li>`).join("")}
</ul></details></main></body></html>`;
}

/**
 * The end-session page. Latchkey sends the person here with its ID token as a hint, right
 * after they chose Sign out, so there is nothing left to ask: the form (with its CSRF
 * token) submits itself, and a button remains for browsers without scripts.
 */
function logoutPage(ctx: { body: unknown }, form: string): void {
  ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing out · Local IdP</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif"><main><h1>Signing out…</h1>${form}
<input type="hidden" name="logout" value="yes" form="op.logoutForm">
<button type="submit" form="op.logoutForm">Sign out of the identity provider</button></main>
<script>document.getElementById("op.logoutForm").submit()</script></body></html>`;
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error("form too large");
  }
  return new URLSearchParams(body);
}

export async function startLocalIdp(options: LocalIdpOptions): Promise<RunningIdp> {
  const demoUsers = options.users ?? DEMO_USERS;
  let state: DirectoryState = {};
  const current = (): DirectoryState => {
    if (!options.directoryFile || !existsSync(options.directoryFile)) return state;
    const file = JSON.parse(readFileSync(options.directoryFile, "utf8")) as DirectoryState;
    return { users: { ...state.users, ...file.users }, claimsOnlyAtUserinfo: file.claimsOnlyAtUserinfo ?? state.claimsOnlyAtUserinfo };
  };
  const directory: LocalDirectory = {
    setUser: (email, entry) => (state = { ...state, users: { ...state.users, [email]: { ...state.users?.[email], ...entry } } }),
    setClaimsOnlyAtUserinfo: (on) => (state = { ...state, claimsOnlyAtUserinfo: on }),
    reset: () => (state = {}),
  };
  const allUsers = (): { user: DemoUser; entry: DirectoryEntry }[] => {
    const entries = current().users ?? {};
    const known = demoUsers.map((user) => ({ user, entry: entries[user.email] ?? {} }));
    const added = Object.entries(entries)
      .filter(([email]) => !demoUsers.some((u) => u.email === email))
      .map(([email, entry]) => ({ user: { email, name: entry.name ?? email, groups: [] }, entry }));
    return [...known, ...added];
  };
  const users = { find: (match: (u: DemoUser) => boolean) => allUsers().find(({ user }) => match(user))?.user };
  const issuer = `http://localhost:${options.port}`;
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const signingJwk = { ...(await exportJWK(privateKey)), kid: "local-idp", alg: "RS256", use: "sig" };

  // Imported here, not at the top: it prints warnings as it loads, which the caller may want to route (serve.ts logs JSON in production).
  const { default: Provider } = await import("oidc-provider");
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: options.clientId,
        client_secret: options.clientSecret,
        client_name: "Latchkey",
        redirect_uris: options.redirectUris,
        post_logout_redirect_uris: options.postLogoutRedirectUris ?? [],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    pkce: { required: () => true },
    scopes: ["openid", "email", "profile", "groups"],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
    // Release the requested claims in the ID token too (next-auth reads the ID token).
    conformIdTokenClaims: false,
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    features: {
      devInteractions: { enabled: false },
      // RP-initiated logout (end_session_endpoint): signing out of Latchkey ends this session too.
      rpInitiatedLogout: { enabled: true, logoutSource: logoutPage },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, id) {
      if (!users.find((u) => u.email === id)) return undefined;
      return {
        accountId: id,
        // Read at each answer, so a change between two sign-ins shows in the second.
        async claims(use) {
          const found = allUsers().find(({ user }) => user.email === id);
          if (!found) return { sub: id };
          const { user, entry } = found;
          if (use === "id_token" && current().claimsOnlyAtUserinfo) return { sub: user.email };
          const claims: Record<string, unknown> = {
            sub: user.email,
            email: user.email,
            email_verified: entry.emailVerified === undefined ? true : entry.emailVerified,
            name: entry.name ?? user.name,
            groups: entry.groups ?? user.groups,
          };
          if (claims.email_verified === null) delete claims.email_verified;
          for (const claim of entry.omit ?? []) delete claims[claim];
          return claims as { sub: string };
        },
      };
    },
    ttl: { Session: 60 * 60, Interaction: 10 * 60, Grant: 60 * 60, AccessToken: 10 * 60, IdToken: 10 * 60, AuthorizationCode: 60 },
  });
  provider.proxy = false;
  const callback = provider.callback();

  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? "").split("?")[0]!;
    // Browsers ask every origin for its icon; the provider has none, and a 404 would show as a console error on its pages.
    if (path === "/favicon.ico") {
      res.writeHead(204, { "cache-control": "max-age=86400" });
      return res.end();
    }
    const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(path);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      const clientName = "Latchkey";
      if (match[2] && req.method === "POST") {
        const form = await readForm(req);
        const email = (form.get("email") ?? "").trim().toLowerCase();
        const user = users.find((u) => u.email === email);
        if (!user || !sameSecret(form.get("password") ?? "", DEMO_PASSWORD)) {
          res.writeHead(401, { "content-type": "text/html; charset=utf-8" });
          return res.end(
            loginPage(
              details.uid,
              clientName,
              allUsers().map((u) => u.user),
              "Unknown e-mail or wrong password.",
              email,
            ),
          );
        }
        return provider.interactionFinished(req, res, { login: { accountId: user.email } }, { mergeWithLastSubmission: false });
      }
      if (details.prompt.name === "login") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        return res.end(
          loginPage(
            details.uid,
            clientName,
            allUsers().map((u) => u.user),
          ),
        );
      }
      // First-party client: consent is implied; grant what was asked for.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
      if (!grant) throw new Error("grant not found");
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (error) {
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8" });
      res.end(`Sign-in could not continue: ${(error as Error).message}. Start again from Latchkey.`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", resolve);
  });
  return {
    issuer,
    directory,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
