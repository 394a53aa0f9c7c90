"use client";

import { useEffect, useState } from "react";

/**
 * False until React has hydrated. Buttons stay disabled until then, so a click made while
 * the page is still loading is not silently lost (or sent as a bare HTML form).
 */
export function useHydrated(): boolean {
  const [hydrated, setHydrated] = useState(false);
  useEffect(() => setHydrated(true), []);
  return hydrated;
}
