#!/usr/bin/env node
// @ts-check
// latchkey: the command line for Latchkey's API (/api/v1), for people and automation.
// Plain Node.js (20+), no dependencies: it runs wherever the portal's API is reachable.
// Only `latchkey mcp` needs one, the official MCP SDK, loaded when that command runs.
// Its API calls are typed by latchkey-api.d.ts, generated from the OpenAPI document
// (`npm run api:types`); `npm run typecheck` checks them, the file is not needed to run.

/** @typedef {import("./latchkey-api.js").paths} Paths */
import { readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

// Kept equal to package.json's version by a test; the CLI must also run as a lone file.
const VERSION = "0.1.0";

/** Exit codes: scripts branch on them, so they never change meaning. */
const EXIT = { ok: 0, error: 1, usage: 2, rejected: 3, cancelled: 4, expired: 5, revoked: 6, failed: 7, timedOut: 8 };

const HELP = `Usage: latchkey <command> [options]

Commands
  whoami                               who the token speaks for
  workflows                            what you may request, with targets and limits
  request <workflow> --target <id> --justification <text> [--role <r>] [--duration <30m|2h>] [--field name=value ...] [--wait [--timeout <s>]]
  status <request-id> [--wait [--timeout <s>]]   a request's status (--wait: until it is decided and carried out)
  list                                 your requests, newest first
  inbox                                requests you could approve now
  approve <request-id> [--comment <text>]
  reject <request-id> --comment <text>
  cancel <request-id>                  withdraw a pending request
  revoke <request-id> [--reason <text>]  end an active grant early
  credential <request-id>              print the credential of an active grant (once)
  completion bash|zsh                  print a shell completion script
  mcp                                  an MCP server on stdio for AI agents (needs @modelcontextprotocol/sdk)

Options
  --profile <name>     a profile of the configuration file (or LATCHKEY_PROFILE)
  --url <url>          Latchkey's address (or LATCHKEY_URL, or the profile's "url")
  --token-file <path>  read the API token from a file (otherwise LATCHKEY_TOKEN, or the profile's "token"/"tokenFile")
  --timeout <seconds>  how long --wait waits (default 600)
  --json               print JSON instead of a summary
  --version
  -h, --help

Configuration: $XDG_CONFIG_HOME/latchkey/config.json (default ~/.config/latchkey/config.json)
  {"defaultProfile": "prod", "profiles": {"prod": {"url": "https://latchkey.example.com", "tokenFile": "~/.latchkey-token"}}}
Flags win over LATCHKEY_URL/LATCHKEY_TOKEN, which win over the profile.

Exit status
  0 done; with --wait: the request became active or completed
  1 refused or failed to reach Latchkey (the reason is printed)
  2 wrong usage or configuration
  3 rejected   4 cancelled   5 expired   6 revoked   7 failed   8 --timeout passed first`;

class Usage extends Error {}
class Refused extends Error {}

const { values: opts, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        profile: { type: "string" },
        url: { type: "string" },
        "token-file": { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", default: false },
        target: { type: "string" },
        role: { type: "string" },
        duration: { type: "string" },
        justification: { type: "string" },
        field: { type: "string", multiple: true, default: [] },
        comment: { type: "string" },
        reason: { type: "string" },
        wait: { type: "boolean", default: false },
        timeout: { type: "string", default: "600" },
      },
    });
  } catch (error) {
    console.error(`latchkey: ${error.message}\n\n${HELP}`);
    process.exit(EXIT.usage);
  }
})();

const PROFILE_KEYS = { url: "string", token: "string", tokenFile: "string" };

function configPath() {
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), ".config");
  return path.join(base, "latchkey", "config.json");
}

const home = (p) => (p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p);

/**
 * Reads the configuration file strictly: a typo must not silently fall back to another
 * Latchkey, so every unknown key or wrong type is an error naming the file and the key.
 */
function loadProfile() {
  const file = configPath();
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (error.code !== "ENOENT") throw new Usage(`${file}: cannot read it (${error.code}).`);
    const wanted = opts.profile ?? process.env.LATCHKEY_PROFILE;
    if (wanted) throw new Usage(`${file}: no such file, so there is no profile "${wanted}".`);
    return {};
  }
  let config;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new Usage(`${file}: not valid JSON (${error.message}).`);
  }
  if (!config || typeof config !== "object" || Array.isArray(config)) throw new Usage(`${file}: must hold a JSON object.`);
  for (const key of Object.keys(config)) {
    if (key !== "defaultProfile" && key !== "profiles") throw new Usage(`${file}: unknown key "${key}" (expected "defaultProfile" and "profiles").`);
  }
  if (config.defaultProfile !== undefined && typeof config.defaultProfile !== "string") throw new Usage(`${file}: "defaultProfile" must be a string.`);
  const profiles = config.profiles ?? {};
  if (typeof profiles !== "object" || Array.isArray(profiles)) throw new Usage(`${file}: "profiles" must be an object of named profiles.`);
  for (const [name, profile] of Object.entries(profiles)) {
    if (!profile || typeof profile !== "object" || Array.isArray(profile)) throw new Usage(`${file}: "profiles.${name}" must be an object.`);
    for (const [key, value] of Object.entries(profile)) {
      if (!(key in PROFILE_KEYS)) throw new Usage(`${file}: unknown key "profiles.${name}.${key}" (expected ${Object.keys(PROFILE_KEYS).join(", ")}).`);
      if (typeof value !== PROFILE_KEYS[key] || value === "") throw new Usage(`${file}: "profiles.${name}.${key}" must be a non-empty string.`);
    }
    if (profile.token && profile.tokenFile) throw new Usage(`${file}: "profiles.${name}" has both "token" and "tokenFile"; keep one.`);
  }
  const name = opts.profile ?? process.env.LATCHKEY_PROFILE ?? config.defaultProfile;
  if (!name) return {};
  if (!Object.hasOwn(profiles, name)) throw new Usage(`${file}: no profile "${name}" (profiles: ${Object.keys(profiles).join(", ") || "none"}).`);
  const profile = profiles[name];
  if (profile.token) {
    // A token in a file others can read is a token others can use.
    const mode = statSync(file).mode;
    if (mode & 0o077) console.error(`latchkey: warning: ${file} holds a token and can be read by others; chmod 600 it.`);
  }
  return { ...profile, source: `profile "${name}" of ${file}` };
}

function readToken(file) {
  try {
    return readFileSync(home(file), "utf8").trim();
  } catch (error) {
    throw new Usage(`Cannot read the token file ${file} (${error.code}).`);
  }
}

let resolved;
function settings() {
  if (resolved) return resolved;
  const profile = loadProfile();
  const url = opts.url ?? process.env.LATCHKEY_URL ?? profile.url;
  if (!url) throw new Usage('Say where Latchkey is: --url https://latchkey.example.com, LATCHKEY_URL, or a profile\'s "url".');
  const token = opts["token-file"]
    ? readToken(opts["token-file"])
    : process.env.LATCHKEY_TOKEN || profile.token || (profile.tokenFile ? readToken(profile.tokenFile) : undefined);
  if (!token)
    throw new Usage('No API token: set LATCHKEY_TOKEN, pass --token-file, or give the profile a "tokenFile". Make one on Latchkey\'s API tokens page.');
  resolved = { base: `${url.replace(/\/$/, "")}/api/v1`, token };
  return resolved;
}

/**
 * One call of a documented operation, typed by the OpenAPI document: the body it takes and
 * the answer it gives.
 * @template {keyof Paths} P
 * @template {"GET" | "POST"} M
 * @param {M} method
 * @param {P} template a documented path, e.g. "/requests/{id}"
 * @param {{ id?: string, query?: string, body?: import("./latchkey-api.js").Body<P, Lowercase<M>> }} [options]
 * @returns {Promise<import("./latchkey-api.js").Answer<P, Lowercase<M>>>}
 */
function api(method, template, options = {}) {
  const path = String(template).replace("{id}", encodeURIComponent(options.id ?? ""));
  return send(method, `${path}${options.query ? `?${options.query}` : ""}`, options.body);
}

/** @param {string} method @param {string} path @param {unknown} [body] @returns {Promise<any>} */
async function send(method, path, body) {
  const { base, token } = settings();
  let response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: "application/json", ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new Refused(`Cannot reach ${base}: ${error.cause?.code ?? error.cause?.errors?.[0]?.code ?? error.cause?.message ?? error.message}`);
  }
  const text = await response.text();
  let data;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new Refused(`Latchkey answered ${response.status} with something that is not JSON.`);
  }
  if (!response.ok) {
    /** RFC 9457 problem details: `detail` says what went wrong, `fields` which inputs. @type {Partial<import("./latchkey-api.js").Problem> | null} */
    const problem = data;
    const fields = problem?.fields
      ? Object.entries(problem.fields)
          .map(([k, v]) => `\n  ${k}: ${v}`)
          .join("")
      : "";
    throw new Refused(`${problem?.detail ?? problem?.title ?? `HTTP ${response.status}`}${fields}`);
  }
  return data;
}

/**
 * Every page of a list: the API answers a page at a time and links the next one.
 * @template {"/requests" | "/approvals" | "/workflows"} P
 * @param {P} template
 * @param {"requests" | "workflows"} key
 * @returns {Promise<import("./latchkey-api.js").Answer<P, "get">>}
 */
async function all(template, key) {
  const items = [];
  /** @type {string | null} */
  let next = null;
  do {
    const page = next ? await send("GET", next.replace(/^\/api\/v1/, "")) : await api("GET", template, { query: "limit=200" });
    items.push(...page[key]);
    next = page.next;
  } while (next);
  return /** @type {any} */ ({ [key]: items, next: null });
}

function minutes(text) {
  const m = /^(\d+)\s*(m|min|h|d)?$/i.exec(text.trim());
  if (!m) throw new Usage(`--duration "${text}": use minutes or a unit, e.g. 45m, 2h.`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "m").toLowerCase();
  return unit === "h" ? n * 60 : unit === "d" ? n * 1440 : n;
}

function fieldValue(raw) {
  if (raw === "true" || raw === "false") return raw === "true";
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  return raw;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const UNSETTLED = new Set(["pending", "approved", "executing"]);
/** What --wait exits with for each settled status. */
const SETTLED_EXIT = {
  active: EXIT.ok,
  completed: EXIT.ok,
  rejected: EXIT.rejected,
  cancelled: EXIT.cancelled,
  expired: EXIT.expired,
  revoked: EXIT.revoked,
  failed: EXIT.failed,
};

/** @typedef {import("./latchkey-api.js").components["schemas"]} Schemas */

/** @param {Schemas["Request"]} r */
function summary(r) {
  const lines = [`${r.id}  ${r.status}  ${r.workflowId} → ${r.targetTitle ?? r.targetId}  (requested by ${r.requester})`];
  for (const st of r.stages ?? []) {
    lines.push(
      `  stage ${st.name}: ${st.state}${st.approvedBy?.length ? `, approved by ${st.approvedBy.join(", ")}` : ""}${st.state === "current" && st.couldApprove?.length ? `; can approve: ${st.couldApprove.join(", ")}` : ""}`,
    );
  }
  if (r.expiresAt) lines.push(`  expires ${r.expiresAt}`);
  if (r.failureReason) lines.push(`  ${r.failureReason}`);
  if (r.credential?.revealable) lines.push(`  credential ready: latchkey credential ${r.id}`);
  return lines.join("\n");
}

function timeoutSeconds() {
  const seconds = Number(opts.timeout);
  if (!/^\d+(\.\d+)?$/.test(opts.timeout) || seconds <= 0) throw new Usage(`--timeout "${opts.timeout}": give a number of seconds above 0.`);
  return seconds;
}

/**
 * Polls until the request settles or --timeout passes. Prints the request either way and
 * sets the exit code from its status, so `latchkey request … --wait && deploy` only
 * deploys with access granted.
 */
async function waitFor(id) {
  const deadline = Date.now() + timeoutSeconds() * 1000;
  let request = await api("GET", "/requests/{id}", { id });
  let last = "";
  while (UNSETTLED.has(request.status) && Date.now() < deadline) {
    if (request.status !== last && !opts.json) console.error(`… ${request.status}`);
    last = request.status;
    await sleep(Math.max(0, Math.min(2000, deadline - Date.now())));
    request = await api("GET", "/requests/{id}", { id });
  }
  print(request, summary);
  if (UNSETTLED.has(request.status)) {
    console.error(`latchkey: still ${request.status} after ${opts.timeout} s.`);
    process.exitCode = EXIT.timedOut;
  } else {
    process.exitCode = SETTLED_EXIT[request.status] ?? EXIT.error;
    if (process.exitCode !== EXIT.ok) console.error(`latchkey: the request is ${request.status}.`);
  }
}

/**
 * @template T
 * @param {T} data
 * @param {(data: T) => string} human
 */
function print(data, human) {
  console.log(opts.json ? JSON.stringify(data, null, 2) : human(data));
}

function need(value, message) {
  if (!value) throw new Usage(message);
  return value;
}

/** @param {{ requests: Schemas["RequestSummary"][] }} page */
const listing = ({ requests }) =>
  requests.length === 0
    ? "Nothing."
    : requests.map((r) => `${r.id}  ${r.status}  ${r.workflowId} → ${r.targetTitle ?? r.targetId}  ${r.requester ?? ""}`.trimEnd()).join("\n");

const COMMANDS = ["whoami", "workflows", "request", "status", "list", "inbox", "approve", "reject", "cancel", "revoke", "credential", "completion", "mcp"];
const FLAGS = [
  "--profile",
  "--url",
  "--token-file",
  "--json",
  "--version",
  "--help",
  "--target",
  "--role",
  "--duration",
  "--justification",
  "--field",
  "--comment",
  "--reason",
  "--wait",
  "--timeout",
];

const COMPLETION = {
  bash: `# latchkey completion for bash: eval "$(latchkey completion bash)"
_latchkey() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  if [[ $prev == --token-file ]]; then COMPREPLY=($(compgen -f -- "$cur")); return; fi
  if [[ $prev == completion ]]; then COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return; fi
  if [[ $COMP_CWORD -eq 1 || $cur == -* ]]; then
    COMPREPLY=($(compgen -W "${COMMANDS.join(" ")} ${FLAGS.join(" ")}" -- "$cur"))
  fi
}
complete -F _latchkey latchkey
`,
  // zsh runs the bash function through its own bashcompinit.
  zsh: "",
};
COMPLETION.zsh = `# latchkey completion for zsh: eval "$(latchkey completion zsh)"\nautoload -U +X bashcompinit && bashcompinit\n${COMPLETION.bash.split("\n").slice(1).join("\n")}`;

const commands = {
  async whoami() {
    print(
      await api("GET", "/me"),
      (me) =>
        `${me.email}  roles: ${me.roles.join(", ") || "none"}${me.requestOnly ? "  (request only)" : ""}\ntoken: ${me.token.kind}, scopes ${me.token.scopes.join(" ")}`,
    );
  },
  async workflows() {
    print(await all("/workflows", "workflows"), ({ workflows }) =>
      workflows.length === 0
        ? "Nothing you may request."
        : workflows
            .map(
              (w) =>
                `${w.id}: ${w.title}\n${w.targets.map((t) => `  --target ${t.id}  ${t.title}${t.roles.length ? `  roles: ${t.roles.join("|")}` : ""}${w.lasting && t.maxDurationMinutes ? `  up to ${t.maxDurationMinutes} min` : ""}`).join("\n")}`,
            )
            .join("\n"),
    );
  },
  async request(workflowId) {
    need(workflowId, "Name the workflow: latchkey request <workflow> ... (see latchkey workflows).");
    const input = { targetId: need(opts.target, "Give --target."), justification: need(opts.justification, "Give --justification: why you need it.") };
    if (opts.role) input.role = opts.role;
    if (opts.duration) input.durationMinutes = minutes(opts.duration);
    for (const pair of opts.field) {
      const at = pair.indexOf("=");
      if (at < 1) throw new Usage(`--field "${pair}": use name=value.`);
      input[pair.slice(0, at)] = fieldValue(pair.slice(at + 1));
    }
    if (opts.wait) timeoutSeconds();
    const request = await api("POST", "/requests", { body: { workflowId, input } });
    if (!opts.wait) return print(request, summary);
    if (!opts.json) console.error(`Requested ${request.id}; waiting for a decision.`);
    await waitFor(request.id);
  },
  async status(id) {
    need(id, "Give the request id: latchkey status <id>.");
    if (opts.wait) await waitFor(id);
    else print(await api("GET", "/requests/{id}", { id }), summary);
  },
  async list() {
    print(await all("/requests", "requests"), listing);
  },
  async inbox() {
    print(await all("/approvals", "requests"), listing);
  },
  async approve(id) {
    need(id, "Give the request id: latchkey approve <id>.");
    print(await api("POST", "/requests/{id}/approve", { id, body: { comment: opts.comment ?? "" } }), summary);
  },
  async reject(id) {
    need(id, "Give the request id: latchkey reject <id> --comment <why>.");
    print(await api("POST", "/requests/{id}/reject", { id, body: { comment: need(opts.comment, "Say why with --comment.") } }), summary);
  },
  async cancel(id) {
    need(id, "Give the request id: latchkey cancel <id>.");
    print(await api("POST", "/requests/{id}/cancel", { id }), summary);
  },
  async revoke(id) {
    need(id, "Give the request id: latchkey revoke <id> [--reason <text>].");
    print(await api("POST", "/requests/{id}/revoke", { id, body: opts.reason ? { reason: opts.reason } : {} }), summary);
  },
  async credential(id) {
    need(id, "Give the request id: latchkey credential <id>.");
    const { credential, expiresAt } = await api("POST", "/requests/{id}/credential", { id });
    if (opts.json) print({ credential, expiresAt }, () => "");
    else {
      // The credential alone on stdout, so it can be captured; the rest on stderr.
      console.error(`Valid until ${expiresAt}. Latchkey will not show it again.`);
      console.log(credential);
    }
  },
  /**
   * MCP over stdio for agents that start their tools as processes: a bridge to Latchkey's own
   * MCP server at /api/mcp, so the tools, scopes, refusals and audit are the server's, whichever
   * transport the agent speaks.
   */
  async mcp() {
    const { base, token } = settings();
    let sdk;
    try {
      sdk = { ...(await import("@modelcontextprotocol/sdk/server/stdio.js")), ...(await import("@modelcontextprotocol/sdk/client/streamableHttp.js")) };
    } catch {
      throw new Usage("latchkey mcp needs the @modelcontextprotocol/sdk package beside it: npm install @modelcontextprotocol/sdk.");
    }
    // A wrong address or token stops here, with the reason on stderr, before an agent starts talking.
    await api("GET", "/me").catch((error) => {
      if (!/lacks the requests:read scope/.test(error.message)) throw error;
    });
    const local = new sdk.StdioServerTransport();
    const remote = new sdk.StreamableHTTPClientTransport(new URL(`${base.replace(/\/api\/v1$/, "")}/api/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}`, "user-agent": `latchkey-cli/${VERSION} (mcp)` } },
    });
    const closed = new Promise((resolve) => {
      local.onclose = () => resolve(undefined);
      process.stdin.once("end", resolve);
    });
    local.onmessage = (/** @type {any} */ message) => {
      remote.send(message).catch((error) => {
        // A refused call still gets its answer, so the agent is not left waiting.
        if (message.method && message.id !== undefined)
          void local.send({ jsonrpc: "2.0", id: message.id, error: { code: -32603, message: `Latchkey: ${error.message}` } });
        else console.error(`latchkey mcp: ${error.message}`);
      });
    };
    remote.onmessage = (message) => void local.send(message);
    remote.onerror = (error) => console.error(`latchkey mcp: ${error.message}`);
    await remote.start();
    await local.start();
    await closed;
    await remote.close();
  },
  async completion(shell) {
    if (!COMPLETION[shell]) throw new Usage("Say which shell: latchkey completion bash, or latchkey completion zsh.");
    if (opts.json) print({ shell, script: COMPLETION[shell] }, () => "");
    else process.stdout.write(COMPLETION[shell]);
  },
};

const [command, ...args] = positionals;
if (opts.version) {
  print({ version: VERSION }, ({ version }) => `latchkey ${version}`);
  process.exit(EXIT.ok);
}
if (opts.help || !command) {
  console.log(HELP);
  process.exit(command || opts.help ? EXIT.ok : EXIT.usage);
}
const run = commands[command];
if (!run) {
  console.error(`latchkey: unknown command "${command}".\n\n${HELP}`);
  process.exit(EXIT.usage);
}
try {
  await run(...args);
} catch (error) {
  if (!(error instanceof Usage) && !(error instanceof Refused)) throw error;
  const code = error instanceof Usage ? EXIT.usage : EXIT.error;
  if (opts.json) console.error(JSON.stringify({ error: error.message, exitCode: code }));
  else console.error(`latchkey: ${error.message}`);
  process.exit(code);
}
