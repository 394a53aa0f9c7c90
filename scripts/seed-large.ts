/**
 * npm run seed:large [-- --requests 100000 --events 1000000]
 * A realistic data set for the auditor's history: a year of requests by a few hundred
 * people on the shipped policy's targets (approved, rejected, cancelled, timed out,
 * break-glass, auto-approved, revoked) and their audit events, hash-chained as Latchkey
 * records them, in database "latchkey_large" (see scripts/support/large-database.ts).
 * The database is dropped and made again each time.
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { largeDatabase } from "./support/large-database";
import { dropDatabase, prepareDatabase } from "./support/prepare-database";

const { values } = parseArgs({ options: { requests: { type: "string", default: "100000" }, events: { type: "string", default: "1000000" } } });
const REQUESTS = Number(values.requests);
const EVENTS = Number(values.events);

const { url, stop } = await largeDatabase();
const { linkHash, sealOf } = await import("../lib/audit/chain");
const { currentKey } = await import("../lib/credentials/keyring");
const { noteOf } = await import("../lib/audit/record");
const { policy } = await import("../lib/policy/current");

// Deterministic randomness, so two runs make the same data set.
let state = 0x2545f491;
const random = () => ((state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0) >>> 0) / 2 ** 32;
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const FIRST = [
  "alice",
  "bob",
  "carol",
  "dave",
  "erin",
  "frank",
  "grace",
  "heidi",
  "ivan",
  "judy",
  "mallory",
  "niaj",
  "olivia",
  "peggy",
  "rupert",
  "sybil",
  "trent",
  "victor",
  "walter",
  "yara",
  "zoe",
  "amir",
  "bea",
  "chen",
  "dina",
  "emeka",
  "farah",
  "goran",
  "hana",
  "igor",
];
const LAST = ["smith", "ng", "garcia", "kowalski", "okafor", "tanaka", "muller", "rossi", "silva", "haddad"];
const WHY = [
  "Investigating {t}: payment retries failing for EU merchants",
  "On-call for {t}, need to read the settlement logs",
  "Deploying the {t} hotfix and checking the migration ran",
  "Customer escalation {t}: refund stuck in pending",
  "Quarterly reconciliation for finance, ticket {t}",
  "Rotating the webhook secret as part of {t}",
  "Kafka consumer lag on the ledger writer, {t}",
  "Backfilling missing invoices after the {t} outage",
  "Verifying the fraud rule change from {t} in production",
  "Postmortem data gathering for {t}",
];
const COMMENTS = [
  "ok",
  "LGTM",
  "approved for the incident",
  "fine, keep it short",
  "approved: matches the change ticket",
  "ok for INC",
  "",
  "go ahead",
  "approved, please revoke when done",
  "as discussed in standup",
];

console.log(`[seed:large] preparing ${url.replace(/\/\/[^@]*@/, "//")}`);
await dropDatabase(url);
await prepareDatabase(url);
const client = new pg.Client({ connectionString: url });
await client.connect();

// People and their groups.
const groupsFor = (i: number) => (i < 8 ? ["platform-admins"] : i < 14 ? ["audit"] : i < 60 ? ["engineering-leads"] : ["engineering"]);
const people = Array.from({ length: 300 }, (_, i) => {
  const email = `${FIRST[i % FIRST.length]}.${LAST[Math.floor(i / FIRST.length) % LAST.length]}${i >= FIRST.length * LAST.length ? i : ""}@example.com`;
  return { id: `usr${i.toString(36).padStart(5, "0")}`, email, groups: groupsFor(i) };
});
const requesters = people.filter((p) => p.groups[0] === "engineering" || p.groups[0] === "engineering-leads");
const approvers = people.filter((p) => p.groups[0] === "engineering-leads" || p.groups[0] === "platform-admins");
await client.query(
  `INSERT INTO "User" (id, email, name, groups, roles, "updatedAt", "lastSignInAt")
   SELECT u.id, u.email, u.email, string_to_array(u.groups, ','), '{}', now(), now() FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, email, groups)`,
  [people.map((p) => p.id), people.map((p) => p.email), people.map((p) => p.groups.join(","))],
);

// The shipped policy's workflow/target pairs that last (grants) and the job ones.
const p = policy();
const pairs = Object.entries(p.workflows).flatMap(([workflowId, w]) => Object.entries(w.targets).map(([targetId, rule]) => ({ workflowId, targetId, rule })));
const lasting = pairs.filter((x) => ["temporary-access", "open-route", "database-access"].includes(x.workflowId));

type Event = {
  at: number;
  actor: { type: string; id: string | null; email: string | null };
  action: string;
  requestId: string | null;
  from: string | null;
  to: string | null;
  data: Record<string, unknown>;
  route: string;
  ip: string;
};

const YEAR = 365 * 86_400_000;
const now = Date.now();
const start = now - YEAR;
const events: Event[] = [];
const requestRows: unknown[][] = [];
const approvalRows: unknown[][] = [];
const ipOf = (i: number) => `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) % 250}`;
const browser = "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0";

for (let n = 0; n < REQUESTS; n++) {
  const { workflowId, targetId, rule } = pick(lasting);
  const who = pick(requesters);
  const created = start + random() * (YEAR - 86_400_000);
  const id = `req${n.toString(36).padStart(8, "0")}`;
  const role = rule.roles?.length ? pick(rule.roles) : null;
  const duration = Math.max(rule.minDuration, Math.min(rule.maxDuration ?? 3600, pick([900, 1800, 3600, 7200, 14400])));
  const justification = pick(WHY).replace("{t}", `INC-${10000 + Math.floor(random() * 90000)}`);
  const approver = pick(approvers);
  const roll = random();
  const outcome =
    roll < 0.62
      ? "expired"
      : roll < 0.7
        ? "revoked"
        : roll < 0.8
          ? "rejected"
          : roll < 0.85
            ? "cancelled"
            : roll < 0.9
              ? "timed_out"
              : roll < 0.93
                ? "break_glass"
                : roll < 0.98
                  ? "auto"
                  : "failed";
  const human = (u: { id: string; email: string }) => ({ type: "human", id: u.id, email: u.email });
  const system = { type: "system", id: null, email: "latchkey" };
  const ev = (
    at: number,
    actor: Event["actor"],
    action: string,
    from: string | null,
    to: string | null,
    data: Record<string, unknown> = {},
    route = "worker",
  ) => events.push({ at, actor, action, requestId: id, from, to, data, route, ip: actor.type === "system" ? "" : ipOf(n) });
  events.push({
    at: created - 60_000,
    actor: human(who),
    action: "auth.signed_in",
    requestId: null,
    from: null,
    to: null,
    data: { groups: who.groups },
    route: "auth:callback/oidc",
    ip: ipOf(n),
  });
  const breakGlass = outcome === "break_glass";
  ev(
    created,
    human(who),
    breakGlass ? "request.break_glass" : "request.created",
    null,
    "pending",
    { workflowId, targetId, role, durationSeconds: duration, justification, ...(breakGlass ? { reason: `Pager: ${justification}` } : {}) },
    "action:request.create",
  );
  let status = "pending";
  let decidedAt: number | null = null;
  let activatedAt: number | null = null;
  let endedAt: number | null = null;
  let auto: string | null = null;
  let reviewedAt: number | null = null;
  const decide = created + (5 + random() * 240) * 60_000;
  const comment = pick(COMMENTS);
  if (outcome === "rejected") {
    ev(
      decide,
      human(approver),
      "request.rejected",
      "pending",
      "rejected",
      { comment: comment || "Not without a change ticket", stage: "Team lead" },
      "action:request.decide",
    );
    approvalRows.push([`apr${n.toString(36)}`, id, approver.id, 0, approver.groups, "reject", comment || "Not without a change ticket", new Date(decide)]);
    status = "rejected";
    decidedAt = endedAt = decide;
  } else if (outcome === "cancelled") {
    ev(decide, human(who), "request.cancelled", "pending", "cancelled", {}, "action:request.cancel");
    status = "cancelled";
    endedAt = decide;
  } else if (outcome === "timed_out") {
    const at = created + 86_400_000;
    ev(at, system, "request.timed_out", "pending", "expired", { pendingExpiresAt: new Date(at).toISOString() });
    status = "expired";
    endedAt = at;
  } else {
    if (breakGlass) decidedAt = created;
    else if (outcome === "auto") {
      auto = "staging-read-under-1h";
      ev(created, system, "request.auto_approved", "pending", "approved", { rule: auto });
      decidedAt = created;
    } else {
      ev(decide, human(approver), "request.approved", "pending", "approved", { comment, stage: rule.stages[0]?.name ?? "Approval" }, "action:request.decide");
      approvalRows.push([`apr${n.toString(36)}`, id, approver.id, 0, approver.groups, "approve", comment, new Date(decide)]);
      decidedAt = decide;
    }
    const go = decidedAt + 1000;
    ev(go, system, "request.executing", "approved", "executing");
    if (outcome === "failed") {
      ev(go + 30_000, system, "request.failed", "executing", "failed", { reason: "HAProxy runtime API unreachable after 5 attempts" });
      status = "failed";
      endedAt = go + 30_000;
    } else {
      ev(go + 200, system, "credential.issued", null, null, { jti: `${id}-jti`, kid: "k1", expiresAt: new Date(go + duration * 1000).toISOString() });
      ev(go + 400, system, "grant.activated", "executing", "active", { expiresAt: new Date(go + duration * 1000).toISOString() });
      activatedAt = go + 400;
      ev(go + 30_000, human(who), "credential.revealed", null, null, { jti: `${id}-jti` }, "action:request.reveal");
      const ends = outcome === "revoked" ? activatedAt + duration * 500 : activatedAt + duration * 1000;
      if (ends < now) {
        if (outcome === "revoked") ev(ends, human(who), "grant.revoked", "active", "revoked", { reason: "done early" }, "action:request.revoke");
        else ev(ends, system, "grant.expired", "active", "expired", { expiresAt: new Date(ends).toISOString() });
        status = outcome === "revoked" ? "revoked" : "expired";
        endedAt = ends;
      } else status = "active";
      if (breakGlass && random() < 0.8) {
        reviewedAt = activatedAt + 3_600_000;
        ev(reviewedAt, human(approver), "break_glass.reviewed", null, null, { comment: "reviewed in the incident retro" }, "action:request.review-break-glass");
      }
    }
  }
  requestRows.push([
    id,
    workflowId,
    targetId,
    who.id,
    status,
    JSON.stringify({ targetId, role, durationMinutes: duration / 60, justification }),
    justification,
    duration,
    JSON.stringify(rule.stages),
    new Date(created),
    decidedAt && new Date(decidedAt),
    activatedAt && new Date(activatedAt),
    activatedAt && new Date(activatedAt + duration * 1000),
    endedAt && new Date(endedAt),
    breakGlass,
    breakGlass ? `Pager: ${justification}` : null,
    reviewedAt && new Date(reviewedAt),
    reviewedAt ? approver.id : null,
    auto,
  ]);
}
// Sign-ins and exports fill the log up to the number of events asked for.
const auditors = people.filter((x) => x.groups[0] === "audit");
while (events.length < EVENTS) {
  const who = random() < 0.9 ? pick(people) : pick(auditors);
  const at = start + random() * YEAR;
  events.push({
    at,
    actor: { type: "human", id: who.id, email: who.email },
    action: who.groups[0] === "audit" && random() < 0.3 ? "history.exported" : "auth.signed_in",
    requestId: null,
    from: null,
    to: null,
    data: {},
    route: "auth:callback/oidc",
    ip: ipOf(events.length),
  });
}
events.length = Math.min(events.length, EVENTS);
console.log(`[seed:large] generated ${requestRows.length} requests, ${approvalRows.length} decisions and ${events.length} events`);

/** Timestamps go in as UTC ISO strings: the columns are "timestamp without time zone", in UTC as Prisma keeps them. */
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : v);

async function insertRequests() {
  for (let i = 0; i < requestRows.length; i += 5000) {
    const rows = requestRows.slice(i, i + 5000);
    const col = (k: number) => rows.map((r) => iso(r[k] ?? null));
    await client.query(
      `INSERT INTO "AccessRequest" (id, "workflowId", "targetId", "requesterId", status, input, justification, "durationSeconds", stages, "createdAt", "updatedAt", "decidedAt", "activatedAt", "expiresAt", "endedAt", "breakGlass", "breakGlassReason", "reviewedAt", "reviewedById", "autoApprovedBy")
       SELECT id, w, t, r, s::"RequestStatus", i::jsonb, j, d, st::jsonb, c, c, da, aa, ea, en, bg, bgr, ra, rb, au
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::text[], $10::timestamp[], $11::timestamp[], $12::timestamp[], $13::timestamp[], $14::timestamp[], $15::bool[], $16::text[], $17::timestamp[], $18::text[], $19::text[])
         AS x(id, w, t, r, s, i, j, d, st, c, da, aa, ea, en, bg, bgr, ra, rb, au)`,
      Array.from({ length: 19 }, (_, k) => col(k)),
    );
  }
  for (let i = 0; i < approvalRows.length; i += 5000) {
    const rows = approvalRows.slice(i, i + 5000);
    await client.query(
      `INSERT INTO "Approval" (id, "requestId", "approverId", stage, "approverGroups", decision, comment, "createdAt")
       SELECT id, rq, ap, st, string_to_array(g, ','), d::"Decision", c, t FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::timestamp[]) AS x(id, rq, ap, st, g, d, c, t)`,
      [0, 1, 2, 3, 4, 5, 6, 7].map((k) => rows.map((r) => (k === 4 ? (r[k] as string[]).join(",") : iso(r[k])))),
    );
  }
}

async function insertEvents() {
  events.sort((a, b) => a.at - b.at);
  const targetOf = new Map(requestRows.map((r) => [r[0] as string, { workflowId: r[1] as string, targetId: r[2] as string }]));
  let prev = "";
  const key = currentKey();
  const started = Date.now();
  for (let i = 0; i < events.length; i += 5000) {
    const batch = events.slice(i, i + 5000).map((e, k) => {
      const req = e.requestId ? targetOf.get(e.requestId) : undefined;
      const content = {
        seq: BigInt(i + k + 1),
        // Milliseconds, as the database keeps them.
        occurredAt: new Date(Math.floor(e.at)),
        actorType: e.actor.type,
        actorId: e.actor.id,
        actorEmail: e.actor.email,
        action: e.action,
        requestId: e.requestId,
        fromStatus: e.from,
        toStatus: e.to,
        data: JSON.parse(JSON.stringify(e.data)),
        ip: e.ip || null,
        userAgent: e.actor.type === "system" ? null : browser,
        route: e.route,
        workflowId: req?.workflowId ?? null,
        targetId: req?.targetId ?? null,
        environment: req ? (p.targets[req.targetId]?.environment ?? null) : null,
        note: noteOf(e.data),
      };
      // As the portal writes them: sealed under the current key, then linked into the chain (lib/audit/chain.ts).
      const id = content.seq;
      const seal = sealOf({ ...content, id }, key);
      const hash = linkHash({ prevHash: prev, seq: content.seq, id, seal, sealKeyId: key.id }, key);
      const row = { ...content, prevHash: prev, hash, seal };
      prev = hash;
      return row;
    });
    const col = <K extends keyof (typeof batch)[number]>(k: K) => batch.map((r) => r[k]);
    await client.query(
      `INSERT INTO "AuditEvent" (id, seq, "occurredAt", "actorType", "actorId", "actorEmail", action, "requestId", "fromStatus", "toStatus", data, ip, "userAgent", route, "workflowId", "targetId", environment, note, "prevHash", hash, seal, "sealKeyId", "chainKeyId")
       SELECT s, s, o, a::"ActorType", ai, ae, ac, r, f::"RequestStatus", t::"RequestStatus", d::jsonb, ip, ua, ro, w, tg, en, no, ph, h, se, $21, $21
       FROM unnest($1::bigint[], $2::timestamp[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[])
         AS x(s, o, a, ai, ae, ac, r, f, t, d, ip, ua, ro, w, tg, en, no, ph, h, se)`,
      [
        col("seq").map(String),
        col("occurredAt").map(iso),
        col("actorType"),
        col("actorId"),
        col("actorEmail"),
        col("action"),
        col("requestId"),
        col("fromStatus"),
        col("toStatus"),
        batch.map((r) => JSON.stringify(r.data)),
        col("ip"),
        col("userAgent"),
        col("route"),
        col("workflowId"),
        col("targetId"),
        col("environment"),
        col("note"),
        col("prevHash"),
        col("hash"),
        col("seal"),
        key.id,
      ],
    );
    if ((i / 5000) % 20 === 0) console.log(`[seed:large] events: ${i + batch.length} (${Math.round((i + batch.length) / ((Date.now() - started) / 1000))}/s)`);
  }
  await client.query(`SELECT setval(pg_get_serial_sequence('"AuditEvent"', 'id'), $1)`, [events.length]);
  await client.query(`UPDATE "AuditChainHead" SET "lastSeq" = $1, "lastHash" = $2, "genesisSeq" = 1, "keyIdsFromSeq" = 1, "sealsFromSeq" = 1 WHERE id = 1`, [
    events.length,
    prev,
  ]);
}

const began = Date.now();
// The clock in the rows is UTC; make the session agree so timestamps are stored as given.
await client.query(`SET TIME ZONE 'UTC'`);
await insertRequests();
await insertEvents();
// As autovacuum leaves an append-only table in a running installation: statistics, and a visibility map for index-only scans.
await client.query(`VACUUM ANALYZE`);
console.log(
  `[seed:large] done in ${Math.round((Date.now() - began) / 1000)} s: ${requestRows.length} requests and ${events.length} chained audit events in latchkey_large`,
);
await client.end();
await stop();
