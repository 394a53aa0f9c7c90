import type { Metadata } from "next";
import { EmailToggle } from "@/components/settings/email-toggle";
import { requirePrincipal } from "@/lib/auth/session";
import { notificationSettings } from "@/lib/notifications/preferences";

export const metadata: Metadata = { title: "Notifications" };

export default async function NotificationSettingsPage() {
  const who = await requirePrincipal();
  const settings = await notificationSettings(who);
  return (
    <div className="max-w-2xl space-y-6">
      <div>
        <h1 className="text-2xl font-bold tracking-tight">Notifications</h1>
        <p className="mt-1 text-slate-600">
          Latchkey e-mails you when a request waits for your approval or review, and when your own requests are approved, rejected, about to expire or expired.
        </p>
      </div>
      <section aria-labelledby="email-heading" className="space-y-3 rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
        <h2 id="email-heading" className="text-lg font-semibold">
          E-mail to {who.email}
        </h2>
        {settings.emailConfigured ? null : (
          <p className="text-sm text-slate-600">This Latchkey sends no e-mail yet (no SMTP server is configured); your choice applies once it does.</p>
        )}
        <EmailToggle enabled={settings.email} />
      </section>
    </div>
  );
}
