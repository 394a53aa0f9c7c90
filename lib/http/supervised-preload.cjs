"use strict";
/**
 * Loaded with --require into the Next.js server process that the production entry
 * (scripts/start.ts) starts and supervises. When that parent goes away without a word
 * (killed, or crashed), the server stops as it does on SIGTERM rather than live on as an
 * orphan: an orphan keeps the port, so a new entry cannot start, and its logs go to a
 * pipe nobody reads. Next.js logs every uncaught error with console.error, and writing
 * to that broken pipe is itself an uncaught error, so an orphan that wrote anything spun
 * a core at 100%, logging its failure to log, until someone killed it.
 *
 * The parent is gone when the IPC channel it opened closes (or, started without one, when
 * this process is handed to another parent), or when a write to the pipe our output goes
 * to fails. Plain CommonJS, as the other preloads beside it. scripts/serve.ts loads it into
 * the process it starts as well (next dev, or the production entry).
 */

// This process's own concern: processes it may start do not inherit the preload.
if (process.env.NODE_OPTIONS) {
  const escaped = __filename.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  process.env.NODE_OPTIONS = process.env.NODE_OPTIONS.replace(new RegExp(`--require\\s+"?${escaped}"?`), "").trim();
}

let stopping = false;

function stop() {
  if (stopping) return;
  stopping = true;
  // Next.js's standalone server finishes the requests in flight on SIGTERM, then exits.
  process.kill(process.pid, "SIGTERM");
  // Should anything keep it alive, it leaves all the same a minute later (past the entry's own grace periods: 30 s for the web server, 30 s for the worker's jobs).
  setTimeout(() => process.exit(1), 60_000).unref();
}

if (process.send && process.channel) {
  process.once("disconnect", stop);
  // Listening for "disconnect" holds the channel open; the channel alone must not keep the process alive.
  process.channel.unref();
} else {
  // Started without an IPC channel (next dev, by scripts/serve.ts): the parent is gone when this process is handed to another.
  // The parent names itself (it may die before this runs, when reading our parent would already give its successor).
  const parent = Number(process.env.LATCHKEY_SUPERVISOR_PID) || process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 1_000).unref();
}
// Not passed on: a process this one starts has this one as its parent.
delete process.env.LATCHKEY_SUPERVISOR_PID;
// With a listener, a failed write of the output no longer throws (no uncaught error to log, and nothing to loop on).
for (const stream of [process.stdout, process.stderr]) stream.on("error", stop);
