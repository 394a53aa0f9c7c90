"use server";

import { z } from "zod";
import { safeAction } from "@/lib/actions/safe-action";
import { setEmailNotifications } from "@/lib/notifications/preferences";

export const setEmailNotificationsAction = safeAction({
  name: "notifications.set-email",
  input: z.object({ enabled: z.boolean({ message: "Say whether e-mail is on (true) or off (false)." }) }),
  run: (who, { enabled }) => setEmailNotifications(who, enabled),
});
