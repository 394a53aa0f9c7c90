import "server-only";
import { recordEvent } from "../audit/record";
import { db } from "../db";
import { notFound } from "../errors";
import type { Principal } from "../policy/evaluate";

export async function listUsers() {
  const users = await db.user.findMany({
    // Service identities have their own page (Admin → Service identities).
    where: { kind: "person" },
    orderBy: { email: "asc" },
    select: {
      id: true,
      email: true,
      name: true,
      groups: true,
      roles: true,
      lastSignInAt: true,
      active: true,
      _count: { select: { sessions: { where: { expires: { gt: new Date() } } } } },
    },
  });
  return users.map(({ _count, ...u }) => ({ ...u, activeSessions: _count.sessions }));
}

/** Signs a person out everywhere: their sessions end and their API tokens are revoked, now. Their next sign-in refreshes their roles. */
export async function endSessions(admin: Principal, userId: string): Promise<{ ended: number; tokensRevoked: number }> {
  return db.$transaction(async (tx) => {
    const user = await tx.user.findUnique({ where: { id: userId } });
    if (!user) throw notFound("User");
    const { count } = await tx.session.deleteMany({ where: { userId } });
    // Offboarding: the person's API tokens stop with their sessions.
    const tokens = await tx.apiToken.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: new Date() } });
    await recordEvent(tx, {
      actor: { type: "human", id: admin.id, email: admin.email },
      action: "auth.sessions_ended",
      data: { userId, email: user.email, sessions: count, tokensRevoked: tokens.count },
    });
    return { ended: count, tokensRevoked: tokens.count };
  });
}
