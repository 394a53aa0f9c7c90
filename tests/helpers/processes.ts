import { readFileSync } from "node:fs";

/** Whether a process still runs: it exists and is not a zombie (stopped, waiting for whoever adopted it to reap it). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
