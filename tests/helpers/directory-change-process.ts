/**
 * Applies a directory change from a process of its own, as another instance (or the SCIM
 * endpoint behind another load-balancer target) would: what this process's caches hold
 * learns of it only through PostgreSQL's change notifications. Prints when it committed.
 * Usage: tsx --conditions=react-server this-file <userId> <comma-separated groups | "deactivate">
 */
import { applyDirectoryChange } from "../../lib/identity/directory";
import { disconnectDb } from "../../lib/db";

const [userId, change] = process.argv.slice(2);
const outcome = await applyDirectoryChange(
  change === "deactivate" ? { userId: userId!, active: false, source: "scim" } : { userId: userId!, groups: change ? change.split(",") : [], source: "scim" },
);
process.stdout.write(`${JSON.stringify({ committedAt: Date.now(), ...outcome })}\n`);
await disconnectDb();
process.exit(0);
