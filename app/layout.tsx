import type { Metadata } from "next";
import { headers } from "next/headers";
import type { ReactNode } from "react";
import { QueryProvider } from "@/components/layout/query-provider";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Latchkey", template: "%s · Latchkey" },
  description: "Request, approve and receive expiring access to production systems.",
};

export default async function RootLayout({ children }: { children: ReactNode }) {
  // Reading the request makes every page render per request, so each gets the nonce of its
  // Content-Security-Policy (middleware.ts); Next.js applies it to its scripts.
  await headers();
  return (
    <html lang="en">
      <body className="min-h-screen bg-slate-50 font-sans text-slate-900 antialiased">
        <QueryProvider>{children}</QueryProvider>
      </body>
    </html>
  );
}
