import { redirect } from "next/navigation";
import { hasRole, requirePrincipal } from "@/lib/auth/session";

export const dynamic = "force-dynamic";

/** Sends each person to where their work is. */
export default async function Home() {
  const who = await requirePrincipal();
  if (hasRole(who, "requester")) redirect("/catalog");
  if (hasRole(who, "approver")) redirect("/approvals");
  redirect("/history");
}
