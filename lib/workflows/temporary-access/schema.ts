import { z } from "zod";

/** The "Temporary access" form. Shared by the browser and the server. */
export const temporaryAccessSchema = z
  .object({
    targetId: z.string({ message: "Choose a target." }).min(1, { message: "Choose a target." }),
    role: z.enum(["read", "write"], { message: "Choose read or write." }),
    durationMinutes: z.coerce
      .number({ message: "Enter a duration in minutes." })
      .int({ message: "Enter whole minutes." })
      .positive({ message: "Enter a duration of at least one minute." }),
    justification: z
      .string({ message: "Say why you need this access." })
      .trim()
      .min(10, { message: "Say why you need this access (at least 10 characters)." })
      .max(1000, { message: "Keep the justification under 1000 characters." }),
  })
  .strict();

export type TemporaryAccessInput = z.infer<typeof temporaryAccessSchema>;
