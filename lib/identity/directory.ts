import "server-only";
import type { AccessRequest } from "@prisma/client";
import { cancelForDirectory, revokeForDirectory, stopForDirectory } from "../approvals/engine";
import { recordEvent, SYSTEM, type Actor } from "../audit/record";
import { db } from "../db";
import { notFound } from "../errors";
import { logger } from "../log";
import { policy } from "../policy/current";
import { rolesForGroups } from "../policy/evaluate";
import { entitlementRefusal, groupDelta, type Holder } from "./entitlements";

/**
 * Access follows the directory. When the identity provider (at sign-in or through SCIM)
 * or an admin's offboarding says a person left a group or the company, this stores what
 * the directory says and ends at once whatever the person no longer may have: sessions and
 * API tokens on deactivation, API tokens whose scopes need a role they lost, every active
 * grant the policy would no longer give them (through the engine's revocation, so the
 * outside system is cleaned up by the grant's own undo job), every request still being set
 * up (approved or executing: it fails, and whatever the worker opened is undone) and every
 * pending request the policy no longer allows. Each of those is its own audited transaction, and each names
 * why ("directory: removed from engineering-leads").
 */

/** Where the change came from: an OIDC sign-in, a trusted proxy's assertion, SCIM, an admin. */
export type DirectorySource = "sign-in" | "trusted-proxy" | "scim" | "admin";

export interface DirectoryChange {
  userId: string;
  /** False deactivates the person; true reactivates them; absent leaves it. */
  active?: boolean;
  /** The person's groups as the directory says now; absent leaves them. */
  groups?: string[];
  /**
   * Groups the person joins and leaves, applied to the groups stored when the person's row
   * is locked (a SCIM group's member add and remove): two instances changing one person's
   * groups at once each apply their change to what the other committed, so none is lost.
   */
  groupsAdd?: string[];
  groupsRemove?: string[];
  source: DirectorySource;
  /** Who made the change; null or absent for the directory itself. */
  actor?: Actor | null;
  /** Added to the audit trail's reason (e.g. an admin's note). */
  reason?: string;
  /** Offboarding: end every grant and pending request, whatever the policy says. */
  endAll?: boolean;
}

export interface DirectoryOutcome {
  revokedGrants: number;
  cancelledRequests: number;
  endedSessions: number;
  revokedTokens: number;
}

const log = logger("directory");

/** The audit trail's "why", e.g. "directory: removed from engineering-leads". */
export function reasonOf(change: {
  source: DirectorySource;
  deactivated: boolean;
  reactivated?: boolean;
  removed: readonly string[];
  reason?: string;
  endAll?: boolean;
}): string {
  const what = [
    change.deactivated ? "deactivated" : null,
    change.reactivated ? "reactivated" : null,
    change.removed.length ? `removed from ${change.removed.join(", ")}` : null,
    change.endAll && !change.deactivated ? "offboarded" : null,
  ].filter(Boolean);
  const head = change.source === "admin" ? "offboarding" : "directory";
  const note = change.reason?.trim();
  const at = change.source === "sign-in" ? " (at sign-in)" : change.source === "trusted-proxy" ? " (at trusted-proxy sign-in)" : "";
  return `${head}: ${what.length ? what.join("; ") : "groups changed"}${at}${note ? ` (${note})` : ""}`;
}

/** Scopes a token keeps only while its identity holds a role. */
const SCOPE_NEEDS: Record<string, string> = { "approvals:write": "approver" };

export async function applyDirectoryChange(input: DirectoryChange): Promise<DirectoryOutcome> {
  const actor = input.actor ?? SYSTEM;
  const clean = (list: string[] | undefined) => (list ? [...new Set(list.map((g) => g.trim()).filter(Boolean))].sort() : undefined);
  const groupsIn = clean(input.groups);
  const groupsAdd = clean(input.groupsAdd) ?? [];
  const groupsRemove = clean(input.groupsRemove) ?? [];
  const outcome: DirectoryOutcome = { revokedGrants: 0, cancelledRequests: 0, endedSessions: 0, revokedTokens: 0 };

  // 1. What the directory says, with the sessions and tokens that end with it, in one transaction.
  const step = await db.$transaction(async (tx) => {
    const [row] = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "User" WHERE id = ${input.userId} FOR UPDATE`;
    if (!row) throw notFound("User");
    const user = await tx.user.findUniqueOrThrow({ where: { id: input.userId } });
    const groups = [...new Set([...(groupsIn ?? user.groups).filter((g) => !groupsRemove.includes(g)), ...groupsAdd])].sort();
    const active = input.active ?? user.active;
    const roles = rolesForGroups(policy(), groups);
    const { added, removed } = groupDelta(user.groups, groups);
    const deactivated = user.active && !active;
    const reactivated = !user.active && active;
    const reason = reasonOf({ source: input.source, deactivated: !active, reactivated, removed, reason: input.reason, endAll: input.endAll });
    const changed = added.length > 0 || removed.length > 0 || deactivated || reactivated || roles.join() !== user.roles.join();
    if (changed) {
      await tx.user.update({
        where: { id: user.id },
        data: { groups, roles, active, deactivatedAt: deactivated ? new Date() : reactivated ? null : undefined },
      });
      await recordEvent(tx, {
        actor,
        action: "user.directory_changed",
        data: {
          userId: user.id,
          email: user.email,
          source: input.source,
          added,
          removed,
          groups,
          rolesBefore: user.roles,
          roles,
          active,
          ...(deactivated ? { deactivated: true } : {}),
          ...(reactivated ? { reactivated: true } : {}),
          reason,
        },
      });
    }
    let endedSessions = 0;
    if (!active || input.endAll) {
      endedSessions = (await tx.session.deleteMany({ where: { userId: user.id } })).count;
      if (endedSessions)
        await recordEvent(tx, { actor, action: "auth.sessions_ended", data: { userId: user.id, email: user.email, sessions: endedSessions, reason } });
    }
    const tokens = await tx.apiToken.findMany({ where: { userId: user.id, revokedAt: null }, select: { id: true, kind: true, name: true, scopes: true } });
    const lost = tokens.filter((t) => !active || input.endAll || t.scopes.some((s) => SCOPE_NEEDS[s] && !roles.includes(SCOPE_NEEDS[s] as never)));
    for (const token of lost) {
      await tx.apiToken.update({ where: { id: token.id }, data: { revokedAt: new Date() } });
      await recordEvent(tx, { actor, action: "token.revoked", data: { tokenId: token.id, kind: token.kind, name: token.name, owner: user.email, reason } });
    }
    return { holder: { id: user.id, email: user.email, groups, active } satisfies Holder, reason, endedSessions, revokedTokens: lost.length };
  });
  outcome.endedSessions = step.endedSessions;
  outcome.revokedTokens = step.revokedTokens;

  // 2. Each grant and request the person no longer may have, one audited transaction each.
  const held = await db.accessRequest.findMany({
    where: { requesterId: input.userId, status: { in: ["active", "pending", "approved", "executing"] } },
    select: { id: true, status: true, workflowId: true, targetId: true, input: true, breakGlass: true },
    orderBy: { createdAt: "asc" },
  });
  let failure: unknown;
  for (const request of held) {
    const refusal = input.endAll ? "offboarded" : entitlementRefusal(policy(), step.holder, request);
    if (!refusal) continue;
    try {
      const end = request.status === "active" ? revokeForDirectory : request.status === "pending" ? cancelForDirectory : stopForDirectory;
      const ended: AccessRequest | null = await end(request.id, actor, step.reason);
      // A request still being set up (approved, executing) counts as a request that ends, not a grant.
      if (ended) outcome[request.status === "active" ? "revokedGrants" : "cancelledRequests"] += 1;
    } catch (error) {
      // One grant that cannot end now must not keep the others open; the first failure is thrown once all were tried.
      log.error("could not end a grant after a directory change", { requestId: request.id, error: (error as Error).message });
      failure ??= error;
    }
  }
  if (failure) throw failure;
  return outcome;
}
