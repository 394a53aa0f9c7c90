import "server-only";
import { Prisma, type AuditVerification } from "@prisma/client";
import { historyCells, historyRows, isoInstant, type ExportedEvent } from "./rows";
import { describeFilters, type HistoryFilters } from "./filters";

/**
 * Streamed exports of a filtered history: CSV or JSON Lines, read from one statement in batches
 * (lib/history/rows.ts) and written as the client reads (bounded memory, however many rows).
 * The header records the filters, who exported and when, and the last verification of the chain.
 * For CSV, PostgreSQL writes most cells itself (csvCellSql, the same rule as csvCell), so the
 * driver hands over a few texts per row instead of nineteen values.
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

// One rule for both writers of cells: csvCell here, csvCellSql in PostgreSQL.
/** Characters that start a formula in a spreadsheet: such a cell is defused with a leading '. */
const FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"];
/** Characters for which a cell is quoted: a quote, a line break, or either separator a spreadsheet may use. */
const QUOTED_FOR_CHARS = ['"', ",", ";", "\r", "\n"];
/** A bracket expression of these characters, as JavaScript's and PostgreSQL's regular expressions both read it. */
const bracket = (chars: string[]) => `[${chars.map((c) => ({ "-": "\\-", "\t": "\\t", "\r": "\\r", "\n": "\\n" })[c] ?? c).join("")}]`;
const STARTS_FORMULA = new RegExp(`^${bracket(FORMULA_STARTS)}`);
const NEEDS_QUOTES = new RegExp(bracket(QUOTED_FOR_CHARS));
const FORMULA_START = Prisma.raw(FORMULA_STARTS.map((c) => c.charCodeAt(0)).join(", "));
const QUOTED_FOR = Prisma.raw(`E'${bracket(QUOTED_FOR_CHARS)}'`);

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
  if (STARTS_FORMULA.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** csvCell of a text that holds none of QUOTED_FOR: only defused. ascii() reads the first character (0 for ''). */
const plainCellSql = (text: Prisma.Sql) => Prisma.sql`(CASE WHEN ascii(${text}) IN (${FORMULA_START}) THEN '''' || ${text} ELSE coalesce(${text}, '') END)`;

/**
 * csvCell as SQL, for a text expression: the same cell, written by PostgreSQL. A quoted cell
 * holds the defused text, so the test for quoting may look at the text before it is defused
 * (the ' put in front is no reason to quote).
 */
export function csvCellSql(text: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`(CASE WHEN ${text} ~ ${QUOTED_FOR} THEN '"' || (CASE WHEN ascii(${text}) IN (${FORMULA_START}) THEN '''' ELSE '' END) || replace(${text}, '"', '""') || '"'
    ELSE ${plainCellSql(text)} END)`;
}

/**
 * The cells of several texts, joined by commas. The texts are tested for quoting together
 * (a regular expression costs PostgreSQL more per call than per character): when none needs
 * it, as for ids and names nearly always, each is only defused.
 */
export function csvCellsSql(texts: Prisma.Sql[]): Prisma.Sql {
  if (texts.length === 1) return csvCellSql(texts[0]!);
  const cells = (cell: (text: Prisma.Sql) => Prisma.Sql) => Prisma.sql`concat_ws(',', ${Prisma.join(texts.map(cell))})`;
  return Prisma.sql`(CASE WHEN concat(${Prisma.join(texts)}) ~ ${QUOTED_FOR} THEN ${cells(csvCellSql)} ELSE ${cells(plainCellSql)} END)`;
}

type Column = (typeof EXPORT_COLUMNS)[number];
type Write = (cells: Map<string, string>, text: string | null) => string;

/**
 * Columns written here rather than by PostgreSQL, from the text the driver gives: the time
 * (as Date.toISOString() writes it, isoInstant) and the data (as JSON.stringify writes what
 * JSON.parse read, as before: jsonb's own text spaces its JSON differently).
 */
const WRITTEN_HERE: Partial<Record<Column, Write>> = {
  occurredAt: (_, text) => {
    if (text === null) return "";
    const instant = isoInstant(text);
    // An instant with a four-digit year starts with a digit and holds no quote or separator: its
    // cell is itself. Other years ("+010000-…", "-000001-…") go through csvCell, as before.
    const first = instant.charCodeAt(0);
    return first >= 48 && first <= 57 ? instant : csvCell(instant);
  },
  data: (cells, text) => {
    if (text === null) return "";
    let cell = cells.get(text);
    if (cell === undefined) {
      cell = jsonbCell(text) ?? csvCell(JSON.parse(text));
      // Many events carry the same data ({} most of all): each is written once per export, in bounded memory.
      if (cells.size < 1000) cells.set(text, cell);
    }
    return cell;
  },
};

const QUOTE = 34;
const BACKSLASH = 92;
const SPACE = 32;
const COLON = 58;

/**
 * csvCell(JSON.parse(text)) for jsonb's text of an object or array, in one pass and without
 * building the value, or null where that would differ from jsonb's text by more than spacing:
 * JSON.stringify writes numbers as JavaScript reads them (1.50 as 1.5) and puts keys that are
 * array indexes first, so text with a number, or with a key starting with a digit, is left to
 * csvCell. What remains differs only by the space jsonb writes after each ":" and ",", and
 * each character means the same to both: jsonb and JSON.stringify escape strings alike. Such a
 * text starts with "{" or "[" (no formula) and always holds a quote or a comma, or is "{}" or
 * "[]", so the cell is quoted exactly when it holds a quote or a comma (no line break: inside
 * strings they are escaped). About two in five exported events carry data of their own, and
 * JSON.parse with JSON.stringify was the largest part of an export's time in Node.js.
 */
export function jsonbCell(text: string): string | null {
  const first = text.charCodeAt(0);
  if (first !== 123 && first !== 91) return null; // "{" or "["
  let out = "";
  let from = 0;
  let quoted = false;
  let inString = false;
  let stringStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) {
        // An escaped quote is a quote all the same, doubled in the cell like any other.
        if (text.charCodeAt(i + 1) === QUOTE) {
          out += `${text.slice(from, i + 2)}"`;
          from = i + 2;
        }
        i++;
      } else if (c === QUOTE) {
        inString = false;
        // A key: jsonb writes its ":" straight after it. Keys starting with a digit may be array indexes.
        const f = text.charCodeAt(stringStart + 1);
        if (text.charCodeAt(i + 1) === COLON && f >= 48 && f <= 57) return null;
        out += `${text.slice(from, i + 1)}"`;
        from = i + 1;
      }
    } else if (c === QUOTE) {
      inString = true;
      stringStart = i;
      quoted = true;
      out += `${text.slice(from, i + 1)}"`;
      from = i + 1;
    } else if (c === SPACE) {
      out += text.slice(from, i);
      from = i + 1;
    } else if (c === 44)
      quoted = true; // ","
    else if (c === 45 || (c >= 48 && c <= 57)) return null; // a number
  }
  out += text.slice(from);
  return quoted ? `"${out}"` : out;
}

/** Each column's text in SQL, where it is not the column itself. */
const TEXT_OF: Partial<Record<Column, Prisma.Sql>> = {
  seq: Prisma.sql`e.seq::text`,
  id: Prisma.sql`e.id::text`,
  occurredAt: Prisma.sql`e."occurredAt"`,
  actorType: Prisma.sql`e."actorType"::text`,
  fromStatus: Prisma.sql`e."fromStatus"::text`,
  toStatus: Prisma.sql`e."toStatus"::text`,
  data: Prisma.sql`e.data`,
};

/** Columns of free text, where quoting is common (a user agent's "; ", a note's ","): each is tested on its own. */
const FREE_TEXT: readonly Column[] = ["userAgent", "note"];
/** Columns whose text never holds a character csvCell quotes for: a bigint's text is digits and a sign. */
const NEVER_QUOTED: readonly Column[] = ["seq", "id"];

/**
 * The CSV export's row as PostgreSQL sends it: each run of columns PostgreSQL writes as one
 * text (their cells joined by commas), and each column written here on its own. Within a run,
 * neighbouring columns that are neither free text nor never quoted are tested for quoting
 * together (csvCellsSql).
 */
const CSV_PARTS: { sql: Prisma.Sql; write?: Write }[] = [];
{
  let run: Prisma.Sql[] = [];
  let group: Prisma.Sql[] = [];
  const endGroup = () => {
    if (group.length) run.push(csvCellsSql(group));
    group = [];
  };
  const endRun = () => {
    endGroup();
    if (run.length) CSV_PARTS.push({ sql: run.length === 1 ? run[0]! : Prisma.sql`concat_ws(',', ${Prisma.join(run)})` });
    run = [];
  };
  for (const column of EXPORT_COLUMNS) {
    const text = TEXT_OF[column] ?? Prisma.raw(`e."${column}"`);
    const write = WRITTEN_HERE[column];
    if (write) {
      endRun();
      CSV_PARTS.push({ sql: text, write });
    } else if (NEVER_QUOTED.includes(column)) {
      endGroup();
      run.push(plainCellSql(text));
    } else if (FREE_TEXT.includes(column)) {
      endGroup();
      run.push(csvCellSql(text));
    } else group.push(text);
  }
  endRun();
}
const CSV_SELECT = Prisma.join(
  CSV_PARTS.map((part) => part.sql),
  ", ",
);

function csvLines(rows: (string | null)[][], cells: Map<string, string>): string {
  let out = "";
  for (const row of rows) {
    for (let i = 0; i < CSV_PARTS.length; i++) {
      const write = CSV_PARTS[i]!.write;
      out += `${i ? "," : ""}${write ? write(cells, row[i]!) : row[i]!}`;
    }
    out += "\r\n";
  }
  return out;
}

function jsonLines(rows: ExportedEvent[]): string {
  let out = "";
  for (const row of rows) out += `${JSON.stringify({ type: "event", ...row })}\n`;
  return out;
}

/** A download that asks for nothing more for this long is ended, and gives up its statement, snapshot and place (a setting for tests to shorten). */
export const exportStall = { ms: 5 * 60_000 };

export function exportStream(
  format: ExportFormat,
  filters: HistoryFilters,
  by: string,
  verification: AuditVerification | null,
  order: "newest" | "oldest" = "oldest",
  /** Called once when the stream ends, however it ends (read to the end, cancelled, failed, stalled), after its connection is closed: the export's slot. */
  onEnd: () => void = () => undefined,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const header = exportHeader(filters, by, verification);
  const cells = new Map<string, string>();
  const stopping = new AbortController();
  const rows: AsyncGenerator<unknown[]> =
    format === "csv" ? historyCells(filters, order, 5000, CSV_SELECT, stopping.signal) : historyRows(filters, order, 5000, "text", stopping.signal);
  let started = false;
  let ended = false;
  let stalled: NodeJS.Timeout | undefined;
  /** Stops the statement (also while the download waits for its rows), closes its connection, then gives the place back; once. */
  const end = async () => {
    if (ended) return;
    ended = true;
    clearTimeout(stalled);
    stopping.abort();
    await rows.return(undefined).catch(() => undefined);
    onEnd();
  };
  /** Until the download asks for more, nothing more is read; if it asks for nothing for exportStall.ms, it is ended. */
  const arm = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    stalled = setTimeout(() => {
      controller.error(new Error(`the download asked for nothing for ${exportStall.ms / 1000} s`));
      void end();
    }, exportStall.ms);
    stalled.unref();
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        arm(controller);
      },
      async pull(controller) {
        clearTimeout(stalled);
        try {
          if (!started) {
            started = true;
            const head =
              format === "csv"
                ? `# Latchkey audit export\r\n${csvCommentJson(header)}\r\n${EXPORT_COLUMNS.join(",")}\r\n`
                : `${JSON.stringify({ type: "export", ...header })}\n`;
            controller.enqueue(encoder.encode(head));
          } else {
            const next = await rows.next();
            if (next.done) {
              await end();
              controller.close();
              return;
            }
            controller.enqueue(
              encoder.encode(format === "csv" ? csvLines(next.value as (string | null)[][], cells) : jsonLines(next.value as ExportedEvent[])),
            );
          }
        } catch (error) {
          await end();
          throw error;
        }
        arm(controller);
      },
      async cancel() {
        await end();
      },
    },
    // Nothing is formatted ahead of the download's asking: the one batch read ahead waits in lib/history/rows.ts.
    { highWaterMark: 0 },
  );
}
