/** The SQL privileges a database grant may give: shared by the policy's database block and the client that grants them. */
export const PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE"] as const;
export type Privilege = (typeof PRIVILEGES)[number];
