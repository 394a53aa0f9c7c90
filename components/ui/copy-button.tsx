"use client";

import { useState } from "react";
import { Button } from "./button";

/** Copies a secret to the clipboard and says so; the secret never leaves the page otherwise. */
export function CopyButton({ value, label }: { value: string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <Button
      onClick={async () => {
        await navigator.clipboard.writeText(value).catch(() => undefined);
        setCopied(true);
      }}
    >
      {copied ? "Copied" : label}
    </Button>
  );
}
