import "server-only";
import nodemailer from "nodemailer";
import { db } from "../../db";
import { env } from "../../env";
import { EMAIL_CHANNEL } from "../../notifications/email";
import { probe, type IntegrationHealth } from "../adapter";

/** The SMTP server answers when it accepts a connection and the credentials (a handshake with AUTH). */
export const health: IntegrationHealth = {
  async services() {
    const url = env().LATCHKEY_SMTP_URL;
    if (!url) return [];
    const failed = await db.notificationDelivery.findMany({
      where: { channel: EMAIL_CHANNEL, lastError: { not: null } },
      orderBy: { nextAttemptAt: "desc" },
      take: 3,
      select: { nextAttemptAt: true, lastError: true },
    });
    const check = await probe(async () => {
      const transport = nodemailer.createTransport(url);
      try {
        await transport.verify();
        return "accepted a connection and the credentials";
      } finally {
        transport.close();
      }
    });
    return [
      {
        system: "smtp",
        subject: `e-mail from ${env().LATCHKEY_SMTP_FROM}`,
        ...check,
        lastErrors: failed.map((f) => ({ at: f.nextAttemptAt, message: f.lastError! })),
      },
    ];
  },
};
