import type { ReactNode } from "react";

/** The portal's table: a header row of labels and the rows given as children. */
export function DataTable({ headers, children }: { headers: string[]; children: ReactNode }) {
  return (
    // Focusable, so a keyboard can scroll a table wider than a phone; relative, so absolutely
    // positioned parts of its cells (screen-reader-only labels) scroll inside it instead of
    // widening the page.
    <div tabIndex={0} className="relative overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
      <table className="w-full text-left text-sm">
        <thead className="bg-slate-50 text-xs uppercase tracking-wide text-slate-600">
          <tr>
            {headers.map((h, i) => (
              <th key={`${h}-${i}`} className="px-4 py-2">
                {h || <span className="sr-only">Actions</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">{children}</tbody>
      </table>
    </div>
  );
}
