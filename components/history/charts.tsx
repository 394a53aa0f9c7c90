/** Small server-rendered SVG charts: they print, need no JavaScript, and carry a text alternative. */

export function ColumnChart({ title, points, height = 160 }: { title: string; points: { label: string; value: number }[]; height?: number }) {
  const max = Math.max(1, ...points.map((p) => p.value));
  const width = 720;
  const gap = points.length > 60 ? 0 : 2;
  const barWidth = Math.max(1, width / Math.max(points.length, 1) - gap);
  const every = Math.ceil(points.length / 8);
  return (
    <figure className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm break-inside-avoid">
      <figcaption className="mb-2 text-sm font-semibold">{title}</figcaption>
      <svg
        viewBox={`0 0 ${width} ${height + 24}`}
        className="w-full"
        role="img"
        aria-label={`${title}: ${points.map((p) => `${p.label} ${p.value}`).join(", ")}`}
      >
        <line x1={0} y1={height} x2={width} y2={height} stroke="var(--color-slate-300)" />
        <text x={0} y={10} fontSize={11} fill="var(--color-slate-600)">
          {max}
        </text>
        {points.map((p, i) => {
          const h = (p.value / max) * (height - 16);
          const x = i * (barWidth + gap);
          return (
            <g key={p.label}>
              <rect x={x} y={height - h} width={barWidth} height={h} fill="var(--color-indigo-600)">
                <title>{`${p.label}: ${p.value}`}</title>
              </rect>
              {i % every === 0 ? (
                <text x={x} y={height + 16} fontSize={11} fill="var(--color-slate-600)">
                  {p.label.slice(5)}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

export function BarList({ title, rows }: { title: string; rows: { label: string; value: number }[] }) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  return (
    <figure className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm break-inside-avoid">
      <figcaption className="mb-3 text-sm font-semibold">{title}</figcaption>
      {rows.length === 0 ? <p className="text-sm text-slate-600">None.</p> : null}
      <ul className="space-y-1.5">
        {rows.map((r) => (
          <li key={r.label} className="grid grid-cols-[12rem_1fr_3rem] items-center gap-3 text-sm">
            <span className="truncate" title={r.label}>
              {r.label}
            </span>
            <svg viewBox="0 0 100 10" preserveAspectRatio="none" className="h-3 w-full" aria-hidden>
              <rect x={0} y={0} width={(r.value / max) * 100} height={10} fill="var(--color-indigo-600)" />
            </svg>
            <span className="text-right tabular-nums">{r.value}</span>
          </li>
        ))}
      </ul>
    </figure>
  );
}
