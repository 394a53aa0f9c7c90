import type { Role } from "../policy/schema";

declare module "next-auth" {
  interface Session {
    user: { id: string; email: string; name: string; groups: string[]; roles: Role[] };
  }
}
