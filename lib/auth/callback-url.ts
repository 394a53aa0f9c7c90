import { isStorableText } from "../text";

/**
 * Where sign-in sends a person afterwards. next-auth parses `callbackUrl` (from the query,
 * the body, or its own cookie) with `new URL`, which throws on anything that is not a URL,
 * and that surfaced as a 500. A value is usable when it is text, a path on the portal or an
 * absolute http(s) URL, with whole percent escapes; the route refuses anything else with 400,
 * and the redirect callback falls back to the portal's home for a cookie nobody should have
 * been able to set.
 */
export const BAD_CALLBACK_URL = "callbackUrl must be a path on this portal (such as /requests) or an http(s) URL.";

export function callbackUrlProblem(value: unknown): string | null {
  if (value === null || value === undefined || value === "") return null;
  // A JSON body can carry anything; next-auth would throw on a number, an array or an object.
  if (typeof value !== "string") return BAD_CALLBACK_URL;
  if (!isStorableText(value) || value.length > 2000 || /[\u0000-\u001f\u007f]/.test(value) || !decodable(value)) return BAD_CALLBACK_URL;
  if (value.startsWith("/")) return URL.canParse(value, "http://portal.invalid") ? null : BAD_CALLBACK_URL;
  if (!URL.canParse(value)) return BAD_CALLBACK_URL;
  return /^https?:$/.test(new URL(value).protocol) ? null : BAD_CALLBACK_URL;
}

/**
 * Whether every percent escape is whole and stands for UTF-8 text. A lone "%" parses as a URL,
 * but when the route has deleted a cookie, Next.js reads back the Set-Cookie next-auth wrote
 * for the callback URL and decodes it once more, which throws "URIError: URI malformed": a 500.
 */
function decodable(value: string): boolean {
  try {
    decodeURIComponent(value);
    return true;
  } catch {
    return false;
  }
}

const CALLBACK_COOKIES = new Set(["next-auth.callback-url", "__Secure-next-auth.callback-url"]);

/**
 * The callback-url cookies next-auth would refuse with a 500, by name. next-auth sets that
 * cookie only from a value it accepted, so a bad one was written by hand; the route
 * deletes it (the browser is told to forget it too) and sign-in goes on without it.
 */
export function unusableCallbackCookies(cookies: readonly { name: string; value: string }[]): string[] {
  return cookies.filter((c) => CALLBACK_COOKIES.has(c.name) && c.value !== "" && callbackUrlProblem(c.value) !== null).map((c) => c.name);
}

/** next-auth's redirect callback: its default rule (same origin only), without throwing on a value that is not a URL. */
export function safeRedirect({ url, baseUrl }: { url: string; baseUrl: string }): string {
  if (!url || callbackUrlProblem(url) !== null) return baseUrl;
  if (url.startsWith("/")) return `${baseUrl}${url}`;
  return new URL(url).origin === new URL(baseUrl).origin ? url : baseUrl;
}
