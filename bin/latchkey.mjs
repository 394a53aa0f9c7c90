#!/usr/bin/env node
// latchkey: the command line for Latchkey's API (/api/v1), for people and automation.
// Plain Node.js (20+), no dependencies: it runs wherever the portal's API is reachable.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const HELP = `Usage: latchkey <command> [options]

Commands
  whoami                               who the token speaks for
  workflows                            what you may request, with targets and limits
  request <workflow> --target <id> --justification <text> [--role <r>] [--duration <30m|2h>] [--field name=value ...] [--wait]
  status <request-id> [--wait]         a request's status (--wait: until it is decided and carried out)
  approve <request-id> [--comment <text>]
  reject <request-id> --comment <text>
  cancel <request-id>
  credential <request-id>              print the credential of an active grant (once)

Options
  --url <url>          Latchkey's address (or LATCHKEY_URL)
  --token-file <path>  read the API token from a file (otherwise LATCHKEY_TOKEN)
  --json               print the API's JSON instead of a summary
  -h, --help

Exit status: 0 done, 1 refused or failed (the reason is printed), 2 wrong usage.`;

class Usage extends Error {}
class Refused extends Error {}

const { values: opts, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        url: { type: "string" },
        "token-file": { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        target: { type: "string" },
        role: { type: "string" },
        duration: { type: "string" },
        justification: { type: "string" },
        field: { type: "string", multiple: true, default: [] },
        comment: { type: "string" },
        wait: { type: "boolean", default: false },
        timeout: { type: "string", default: "600" },
      },
    });
  } catch (error) {
    console.error(`latchkey: ${error.message}\n\n${HELP}`);
    process.exit(2);
  }
})();

function settings() {
  const url = opts.url ?? process.env.LATCHKEY_URL;
  if (!url) throw new Usage("Say where Latchkey is: --url https://latchkey.example.com or LATCHKEY_URL.");
  const token = opts["token-file"] ? readFileSync(opts["token-file"], "utf8").trim() : process.env.LATCHKEY_TOKEN;
  if (!token) throw new Usage("No API token: set LATCHKEY_TOKEN or pass --token-file. Make one on Latchkey's API tokens page.");
  return { base: `${url.replace(/\/$/, "")}/api/v1`, token };
}

async function api(method, path, body) {
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
    const fields = data?.error?.fields ? Object.entries(data.error.fields).map(([k, v]) => `\n  ${k}: ${v}`).join("") : "";
    throw new Refused(`${data?.error?.message ?? `HTTP ${response.status}`}${fields}`);
  }
  return data;
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

function summary(r) {
  const lines = [`${r.id}  ${r.status}  ${r.workflowId} → ${r.targetTitle ?? r.targetId}  (requested by ${r.requester})`];
  for (const st of r.stages ?? []) {
    lines.push(`  stage ${st.name}: ${st.state}${st.approvedBy?.length ? `, approved by ${st.approvedBy.join(", ")}` : ""}${st.state === "current" && st.couldApprove?.length ? `; can approve: ${st.couldApprove.join(", ")}` : ""}`);
  }
  if (r.expiresAt) lines.push(`  expires ${r.expiresAt}`);
  if (r.failureReason) lines.push(`  ${r.failureReason}`);
  if (r.credential?.revealable) lines.push(`  credential ready: latchkey credential ${r.id}`);
  return lines.join("\n");
}

async function waitFor(id) {
  const deadline = Date.now() + Number(opts.timeout) * 1000;
  let request = await api("GET", `/requests/${encodeURIComponent(id)}`);
  let last = "";
  while (UNSETTLED.has(request.status) && Date.now() < deadline) {
    if (request.status !== last && !opts.json) console.error(`… ${request.status}`);
    last = request.status;
    await sleep(2000);
    request = await api("GET", `/requests/${encodeURIComponent(id)}`);
  }
  if (UNSETTLED.has(request.status)) throw new Refused(`Still ${request.status} after ${opts.timeout} s.`);
  return request;
}

function print(data, human) {
  console.log(opts.json ? JSON.stringify(data, null, 2) : human(data));
}

function need(value, message) {
  if (!value) throw new Usage(message);
  return value;
}

const commands = {
  async whoami() {
    print(await api("GET", "/me"), (me) => `${me.email}  roles: ${me.roles.join(", ") || "none"}${me.requestOnly ? "  (request only)" : ""}\ntoken: ${me.token.kind}, scopes ${me.token.scopes.join(" ")}`);
  },
  async workflows() {
    print(await api("GET", "/workflows"), ({ workflows }) =>
      workflows.length === 0
        ? "Nothing you may request."
        : workflows
            .map((w) => `${w.id}: ${w.title}\n${w.targets.map((t) => `  --target ${t.id}  ${t.title}${t.roles.length ? `  roles: ${t.roles.join("|")}` : ""}${w.lasting && t.maxDurationMinutes ? `  up to ${t.maxDurationMinutes} min` : ""}`).join("\n")}`)
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
    let request = await api("POST", "/requests", { workflowId, input });
    if (opts.wait) request = await waitFor(request.id);
    print(request, summary);
  },
  async status(id) {
    need(id, "Give the request id: latchkey status <id>.");
    print(opts.wait ? await waitFor(id) : await api("GET", `/requests/${encodeURIComponent(id)}`), summary);
  },
  async approve(id) {
    need(id, "Give the request id: latchkey approve <id>.");
    print(await api("POST", `/requests/${encodeURIComponent(id)}/approve`, { comment: opts.comment ?? "" }), summary);
  },
  async reject(id) {
    need(id, "Give the request id: latchkey reject <id> --comment <why>.");
    print(await api("POST", `/requests/${encodeURIComponent(id)}/reject`, { comment: need(opts.comment, "Say why with --comment.") }), summary);
  },
  async cancel(id) {
    need(id, "Give the request id: latchkey cancel <id>.");
    print(await api("POST", `/requests/${encodeURIComponent(id)}/cancel`), summary);
  },
  async credential(id) {
    need(id, "Give the request id: latchkey credential <id>.");
    const { credential, expiresAt } = await api("POST", `/requests/${encodeURIComponent(id)}/credential`);
    if (opts.json) print({ credential, expiresAt }, () => "");
    else {
      // The credential alone on stdout, so it can be captured; the rest on stderr.
      console.error(`Valid until ${expiresAt}. Latchkey will not show it again.`);
      console.log(credential);
    }
  },
};

const [command, ...args] = positionals;
if (opts.help || !command) {
  console.log(HELP);
  process.exit(command || opts.help ? 0 : 2);
}
const run = commands[command];
if (!run) {
  console.error(`latchkey: unknown command "${command}".\n\n${HELP}`);
  process.exit(2);
}
try {
  await run(...args);
} catch (error) {
  if (error instanceof Usage) {
    console.error(`latchkey: ${error.message}`);
    process.exit(2);
  }
  if (error instanceof Refused) {
    console.error(`latchkey: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
