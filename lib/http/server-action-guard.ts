/**
 * Checks a post to a page (a server action) before Next.js runs it. Next.js refuses a
 * foreign origin, an oversized body and a body it cannot decode too, but by throwing, and
 * every one of those answered 500. Here each gets its own status and a message: 403 for
 * another origin, 413 past the size limit, 415 for a body that is not an action's
 * arguments, 400 for malformed or deeply nested ones. Pure (headers, body and settings in,
 * a refusal or null out) so it runs in middleware and in unit tests alike.
 */

/** The size limit for an action's body; next.config.js gives Next.js the same. */
export const ACTION_BODY_LIMIT = 256 * 1024;
/** Deeper than any action's input: arguments nest a few levels, never dozens. */
export const ACTION_MAX_DEPTH = 32;

export interface ActionRefusal {
  status: 400 | 403 | 413 | 415;
  message: string;
}

export interface ActionCall {
  method: string;
  headers: { get(name: string): string | null };
  /** The body as text; read only when the headers pass. */
  body: () => Promise<string>;
}

export interface ActionSettings {
  /** Host names besides the portal's own that may post actions (LATCHKEY_ALLOWED_ORIGINS). */
  allowedOrigins: readonly string[];
  /** Whether the request carries the secret of a configured proxy, whose X-Forwarded-Host is then honoured. */
  fromProxy: boolean;
}

/** The host the browser addressed: X-Forwarded-Host from a configured proxy, otherwise Host. */
export function portalHost(headers: ActionCall["headers"], fromProxy: boolean): string | null {
  const forwarded = fromProxy ? headers.get("x-forwarded-host")?.split(",")[0]?.trim() : undefined;
  return forwarded || headers.get("host");
}

function allowed(host: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => p === host || (p.startsWith("*.") && host.endsWith(p.slice(1)) && host.length > p.length - 1));
}

/** Strings in an action's arguments that start with "$" are references to other parts; ours only carry these. */
const PLAIN_REFERENCE = /^\$(\$|undefined$|NaN$|-?Infinity$|-0$|D|n-?\d+$)/;

/** Refusal reason for parsed arguments: not an array, too deep, or holding references to parts that plain values never need. */
function argumentsProblem(value: unknown): string | null {
  if (!Array.isArray(value)) return "The action's arguments must be a JSON array.";
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 1 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (typeof v === "string") {
      if (v.startsWith("$") && !PLAIN_REFERENCE.test(v)) return "The action's arguments may hold plain values only.";
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (depth > ACTION_MAX_DEPTH) return `The action's arguments nest deeper than ${ACTION_MAX_DEPTH} levels.`;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push({ v: child, depth: depth + 1 });
  }
  return null;
}

function originHost(origin: string): string | null {
  if (!URL.canParse(origin)) return null;
  const url = new URL(origin);
  return /^https?:$/.test(url.protocol) ? url.host : null;
}

export async function checkActionPost(call: ActionCall, settings: ActionSettings): Promise<ActionRefusal | null> {
  if (call.method === "GET" || call.method === "HEAD") return null;
  const { headers } = call;
  const origin = headers.get("origin");
  const host = portalHost(headers, settings.fromProxy);
  const from = origin ? originHost(origin) : null;
  if (!from || !host || (from !== host && !allowed(from, settings.allowedOrigins))) {
    return {
      status: 403,
      message: origin
        ? `Posts from ${origin.slice(0, 100)} are refused: only the portal's own pages may call its actions.`
        : "Posts without an Origin header are refused: only the portal's own pages may call its actions.",
    };
  }
  const declared = headers.get("content-length");
  if (declared !== null && !(Number(declared) <= ACTION_BODY_LIMIT))
    return { status: 413, message: `The body is larger than ${ACTION_BODY_LIMIT / 1024} KiB.` };

  const isAction = headers.get("next-action") !== null;
  const type = headers.get("content-type") ?? "";
  if (!isAction) {
    // The portal has no plain form posts; Next.js would try these as form actions and fail.
    return /^(multipart\/form-data|application\/x-www-form-urlencoded)\b/i.test(type)
      ? { status: 415, message: "The portal takes no form posts; its pages call their actions with JSON arguments." }
      : null;
  }
  if (!/^text\/plain\b/i.test(type)) return { status: 415, message: "A server action takes its arguments as text/plain JSON." };
  const body = await call.body();
  if (new TextEncoder().encode(body).length > ACTION_BODY_LIMIT) return { status: 413, message: `The body is larger than ${ACTION_BODY_LIMIT / 1024} KiB.` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { status: 400, message: "The action's arguments are not valid JSON." };
  }
  const problem = argumentsProblem(parsed);
  return problem ? { status: 400, message: problem } : null;
}
