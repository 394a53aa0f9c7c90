/** Durations in the policy and in forms: "90s", "15m", "8h", "1d", or combinations like "1h30m". */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const PATTERN = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

export function parseDuration(text: string): number | undefined {
  const match = PATTERN.exec(text.trim());
  if (!match || text.trim() === "") return undefined;
  const [, d, h, m, s] = match;
  const seconds = Number(d ?? 0) * UNIT_SECONDS.d! + Number(h ?? 0) * UNIT_SECONDS.h! + Number(m ?? 0) * UNIT_SECONDS.m! + Number(s ?? 0);
  return seconds > 0 ? seconds : undefined;
}

export function formatDuration(totalSeconds: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(totalSeconds));
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.length ? parts.join(" ") : "0s";
}
