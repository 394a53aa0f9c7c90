import { Children, cloneElement, isValidElement, type ReactElement, type ReactNode } from "react";

type Cell = ReactElement<{ children?: ReactNode; "data-label"?: string }>;

/** Gives each cell of a row its column's name, which a phone shows above the cell's content (globals.css, .stack-table). */
function labelled(row: ReactNode, headers: string[]): ReactNode {
  if (!isValidElement<{ children?: ReactNode }>(row) || row.type !== "tr") return row;
  let column = 0;
  const cells = Children.map(row.props.children, (cell) => {
    if (!isValidElement(cell) || (cell.type !== "td" && cell.type !== "th")) return cell;
    const label = headers[column++];
    return label ? cloneElement(cell as Cell, { "data-label": label }) : cell;
  });
  return cloneElement(row, {}, cells);
}

/**
 * The portal's table: a header row of labels and the rows given as children. On a phone each
 * row becomes a card of labelled lines, so no column (what happened, to what) is pushed off
 * screen behind a sideways scroll.
 */
export function DataTable({ headers, children }: { headers: string[]; children: ReactNode }) {
  return (
    // Focusable, so a keyboard can scroll a table wider than a tablet; relative, so absolutely
    // positioned parts of its cells (screen-reader-only labels) scroll inside it instead of
    // widening the page.
    <div tabIndex={0} className="relative overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
      <table className="stack-table w-full text-left text-sm">
        <thead className="bg-slate-50 text-xs uppercase tracking-wide text-slate-600">
          <tr>
            {headers.map((h, i) => (
              <th key={`${h}-${i}`} className="px-4 py-2">
                {h || <span className="sr-only">Actions</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">{Children.map(children, (row) => labelled(row, headers))}</tbody>
      </table>
    </div>
  );
}
