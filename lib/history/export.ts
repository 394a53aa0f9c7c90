import "server-only";
import type { AuditVerification } from "@prisma/client";
import { historyRows, type ExportedEvent } from "./rows";
import { describeFilters, type HistoryFilters } from "./filters";

/**
 * Streamed exports of a filtered history: CSV or JSON Lines, read through a cursor in batches
 * (lib/history/rows.ts) and written as the client reads (bounded memory, however many rows).
 * The header records the filters, who exported and when, and the last verification of the chain.
 */

export type ExportFormat = "csv" | "jsonl";

export const EXPORT_COLUMNS = [
  "seq",
  "id",
  "occurredAt",
  "actorType",
  "actorEmail",
  "action",
  "requestId",
  "workflowId",
  "targetId",
  "environment",
  "fromStatus",
  "toStatus",
  "ip",
  "userAgent",
  "route",
  "note",
  "data",
  "hash",
] as const;

function chainSummary(last: AuditVerification | null) {
  if (!last) return { verified: false, result: "never verified" };
  return {
    verified: true,
    ok: last.ok,
    verifiedAt: last.finishedAt?.toISOString(),
    upToSeq: last.lastSeq?.toString() ?? null,
    firstBadSeq: last.firstBadSeq?.toString() ?? null,
    problem: last.problem,
  };
}

function exportHeader(filters: HistoryFilters, by: string, verification: AuditVerification | null) {
  return { generatedAt: new Date().toISOString(), generatedBy: by, filters: describeFilters(filters), chain: chainSummary(verification) };
}

/**
 * A CSV comment line carrying JSON (the export's header). Semicolons are written as \u003b, still
 * the same JSON: a spreadsheet set to a locale that separates cells with ";" would otherwise
 * split the line there and could read what follows (a filter someone typed) as a formula.
 */
export function csvCommentJson(value: unknown): string {
  return `# ${JSON.stringify(value).replace(/;/g, "\\u003b")}`;
}

/**
 * A CSV cell: quoted when it holds a quote, a line break or either separator a spreadsheet
 * may use ("," or, in many locales, ";"), and defused when a spreadsheet would read it as a
 * formula. Quoted, a cell is never split, so no part of it can start a formula either.
 */
export function csvCell(value: unknown): string {
  let text =
    value === null || value === undefined
      ? ""
      : value instanceof Date
        ? value.toISOString()
        : typeof value === "object"
          ? JSON.stringify(value)
          : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",;\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvLines(rows: ExportedEvent[]): string {
  let out = "";
  for (const row of rows) {
    for (let i = 0; i < EXPORT_COLUMNS.length; i++) out += `${i ? "," : ""}${csvCell(row[EXPORT_COLUMNS[i]!])}`;
    out += "\r\n";
  }
  return out;
}

function jsonLines(rows: ExportedEvent[]): string {
  let out = "";
  for (const row of rows) out += `${JSON.stringify({ type: "event", ...row })}\n`;
  return out;
}

export function exportStream(
  format: ExportFormat,
  filters: HistoryFilters,
  by: string,
  verification: AuditVerification | null,
  order: "newest" | "oldest" = "oldest",
  /** Called once when the stream ends, however it ends (read to the end, cancelled, failed): the export's slot. */
  onEnd: () => void = () => undefined,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const header = exportHeader(filters, by, verification);
  const rows = historyRows(filters, order, 5000, "text");
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        const head =
          format === "csv"
            ? `# Latchkey audit export\r\n${csvCommentJson(header)}\r\n${EXPORT_COLUMNS.join(",")}\r\n`
            : `${JSON.stringify({ type: "export", ...header })}\n`;
        controller.enqueue(encoder.encode(head));
        return;
      }
      try {
        const next = await rows.next();
        if (next.done) {
          onEnd();
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(format === "csv" ? csvLines(next.value) : jsonLines(next.value)));
      } catch (error) {
        onEnd();
        throw error;
      }
    },
    async cancel() {
      onEnd();
      await rows.return(undefined);
    },
  });
}
