import net from "node:net";

/**
 * A TCP proxy in front of PostgreSQL that keeps, for each connection through it, the bytes
 * each side sent as "flights": what one side sent before the other answered. A client that
 * waits for each answer before sending on makes one flight per statement; one that sends a
 * statement and the next together makes one flight for both. Tests of how many round trips the
 * portal's transactions take (tests/integration/round-trips.test.ts) count client flights.
 */
export interface Flight {
  from: "client" | "server";
  bytes: Buffer;
}

export interface WireProxy {
  port: number;
  /** Each connection's flights so far, in the order the connections were opened. */
  connections: Flight[][];
  /** How many of each connection's flights opened it (startup, authentication), before the server was first ready for a query. */
  opening: number[];
  close: () => Promise<void>;
}

const READY = Buffer.from([0x5a, 0, 0, 0, 5]);

export async function wireProxy(host: string, port: number): Promise<WireProxy> {
  const connections: Flight[][] = [];
  const opening: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const flights: Flight[] = [];
    const index = connections.push(flights) - 1;
    opening[index] = Infinity;
    const upstream = net.connect(port, host);
    const record = (from: Flight["from"], chunk: Buffer) => {
      const last = flights.at(-1);
      if (last?.from === from) last.bytes = Buffer.concat([last.bytes, chunk]);
      else flights.push({ from, bytes: chunk });
    };
    client.on("data", (chunk: Buffer) => {
      record("client", chunk);
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      record("server", chunk);
      // ReadyForQuery ('Z', length 5): the connection is open, and what the client sends next is its use.
      if (opening[index] === Infinity && chunk.includes(READY)) opening[index] = flights.length;
      client.write(chunk);
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.on("close", () => {
        sockets.delete(a);
        b.destroy();
      });
      a.on("error", () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    opening,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The client's flights on each connection since `before` (flightMark), past those that opened it, for the connections that sent anything. */
export function clientFlightsSince(proxy: WireProxy, before: number[]): string[][] {
  return proxy.connections
    .map((flights, i) =>
      flights
        .slice(Math.max(before[i] ?? 0, proxy.opening[i]!))
        .filter((f) => f.from === "client")
        .map((f) => f.bytes.toString("latin1")),
    )
    .filter((flights) => flights.length > 0);
}

/** How many flights each connection has had so far: the mark clientFlightsSince counts from. */
export function flightMark(proxy: WireProxy): number[] {
  return proxy.connections.map((flights) => flights.length);
}
