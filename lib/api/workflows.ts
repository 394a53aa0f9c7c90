import "server-only";
import { invalid } from "../errors";
import type { Principal } from "../policy/evaluate";
import { workflowsFor } from "../workflows/catalog";
import type { ApiAnswer } from "./http";
import { pageAnswer, readPage } from "./pagination";
import type { Workflow } from "./schemas";

/** The workflows this identity may request, in catalog order, a page at a time (the cursor names the last workflow shown). */
export async function workflowsPage(who: Principal, request: Request): Promise<ApiAnswer> {
  const page = readPage(request);
  const all: Workflow[] = workflowsFor(who);
  let start = 0;
  if (page.after) {
    const at = page.after[0] === "workflow" ? all.findIndex((w) => w.id === page.after![1]) : -1;
    if (at < 0) throw invalid("This cursor is not one Latchkey gave out; start again without it.", { cursor: "This cursor is not one Latchkey gave out." });
    start = at + 1;
  }
  return pageAnswer(request, "workflows", all.slice(start, start + page.limit + 1), page, (w) => ["workflow", w.id]);
}
