import "server-only";
import { actorOf, recordEvent } from "../audit/record";
import { db } from "../db";
import { env } from "../env";
import type { Principal } from "../policy/evaluate";

/** A person's own notification settings: whether Latchkey e-mails them. */

export async function notificationSettings(who: Principal): Promise<{ email: boolean; emailConfigured: boolean }> {
  const user = await db.user.findUnique({ where: { id: who.id }, select: { emailNotifications: true } });
  return { email: user?.emailNotifications ?? true, emailConfigured: Boolean(env().LATCHKEY_SMTP_URL) };
}

/** Turns e-mail on or off for the signed-in person only; the change is audited with it. */
export async function setEmailNotifications(who: Principal, enabled: boolean): Promise<{ email: boolean }> {
  return db.$transaction(async (tx) => {
    const before = await tx.user.findUniqueOrThrow({ where: { id: who.id }, select: { emailNotifications: true } });
    if (before.emailNotifications === enabled) return { email: enabled };
    await tx.user.update({ where: { id: who.id }, data: { emailNotifications: enabled } });
    await recordEvent(tx, { actor: actorOf(who), action: enabled ? "notifications.email_on" : "notifications.email_off", data: { email: who.email } });
    return { email: enabled };
  });
}
