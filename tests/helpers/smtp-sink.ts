import type { AddressInfo } from "node:net";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";

/**
 * A real SMTP server (the `smtp-server` package, in this process) that requires AUTH,
 * keeps every message it accepts, parsed, and can be told to answer the next RCPT TO
 * with a temporary failure (451), as a busy or greylisting server does.
 */
export function smtpSink(credentials: { user: string; pass: string }) {
  const received: (ParsedMail & { envelopeTo: string[] })[] = [];
  let failuresLeft = 0;
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === credentials.user && auth.password === credentials.pass) return callback(null, { user: auth.username });
      return callback(new Error("535 5.7.8 Authentication credentials invalid"));
    },
    onRcptTo(_address, _session, callback) {
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        const error = new Error("Try again later") as Error & { responseCode: number };
        error.responseCode = 451;
        return callback(error);
      }
      callback();
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((mail) => {
          received.push(Object.assign(mail, { envelopeTo: session.envelope.rcptTo.map((r) => r.address) }));
          callback();
        })
        .catch(callback);
    },
  });
  return {
    received,
    failNext: (n: number) => (failuresLeft = n),
    /** Messages sent to this address. */
    to: (address: string) => received.filter((m) => m.envelopeTo.includes(address)),
    async start(): Promise<number> {
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return (server.server.address() as AddressInfo).port;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
