"use client";

import { useQuery } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useEffect } from "react";

class LiveRefused extends Error {}

/**
 * Keeps a server-rendered page live: polls a small status endpoint (lib/approvals/live.ts)
 * and re-renders the page from the server only when the version it was rendered at has
 * moved, so an approval, an execution step or an expiry made anywhere shows within seconds.
 */
export function LiveRefresh({ url, version, seconds = 2 }: { url: string; version: string; seconds?: number }) {
  const router = useRouter();
  const { data, error } = useQuery({
    queryKey: ["live", url],
    queryFn: async (): Promise<{ version: string }> => {
      const res = await fetch(url, { cache: "no-store" });
      if (res.status === 401 || res.status === 403) throw new LiveRefused(`status ${res.status}`);
      if (!res.ok) throw new Error(`status ${res.status}`);
      return (await res.json()) as { version: string };
    },
    // Once refused (the session ended, a role was taken away), stop polling and let the server render what this viewer may see now.
    refetchInterval: (query) => (query.state.error instanceof LiveRefused ? false : seconds * 1000),
    refetchOnWindowFocus: true,
    retry: false,
  });
  const latest = data?.version;
  const refused = error instanceof LiveRefused;
  useEffect(() => {
    if (refused || (latest && latest !== version)) router.refresh();
  }, [latest, version, refused, router]);
  return null;
}
