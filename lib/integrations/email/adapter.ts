import { z } from "zod";
import { defineIntegration } from "../adapter";

/** E-mail notifications: the SMTP server and the From address (environment); no policy block. */
export const email = defineIntegration({
  name: "email",
  settings: {
    /** SMTP server for e-mail notifications (smtp:// or smtps://, credentials in the URL); e-mail is off while it is unset. */
    LATCHKEY_SMTP_URL: z
      .string()
      .regex(/^smtps?:\/\/[^/\s]+/, { message: "must be an smtp:// or smtps:// URL, e.g. smtp://user:pass@mail.example.com:587" })
      .optional(),
    /** The From address of notification e-mail. */
    LATCHKEY_SMTP_FROM: z
      .string()
      .regex(/^([^<>@\s][^<>@]*<[^<>@\s]+@[^<>@\s]+>|[^<>@\s]+@[^<>@\s]+)$/, { message: 'must be an address, e.g. "Latchkey <latchkey@example.com>"' })
      .default("Latchkey <latchkey@localhost>"),
  },
  health: () => import("./health"),
});
