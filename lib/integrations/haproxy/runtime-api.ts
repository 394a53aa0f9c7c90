import net from "node:net";

/**
 * HAProxy's Runtime API over its UNIX stats socket (`stats socket ... level admin`).
 * One command per connection (non-interactive mode): HAProxy answers and closes.
 */
export interface ProxyRuntime {
  addMapEntry(map: string, key: string, value: string): Promise<void>;
  setOrAddMapEntry(map: string, key: string, value: string): Promise<void>;
  delMapEntry(map: string, key: string): Promise<void>;
  showMap(map: string): Promise<Map<string, string>>;
  /** The pid of the process answering (`show info`): it changes when a reload takes over. */
  processId(): Promise<string>;
}

export class RuntimeApiError extends Error {}

/** Keys and values travel on one command line: refuse anything that could split it. */
const SAFE = /^[A-Za-z0-9._:/@-]{1,200}$/;

function check(...parts: string[]) {
  for (const part of parts) if (!SAFE.test(part)) throw new RuntimeApiError(`"${part}" cannot be sent to HAProxy (letters, digits and . _ : / @ - only).`);
}

export function runtimeApi(socketPath: string, timeoutMs = 5_000): ProxyRuntime {
  const send = (command: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect({ path: socketPath });
      let answer = "";
      socket.setTimeout(timeoutMs, () => socket.destroy(new RuntimeApiError(`HAProxy did not answer within ${timeoutMs} ms`)));
      socket.on("connect", () => socket.end(`${command}\n`));
      socket.on("data", (chunk) => (answer += chunk.toString()));
      socket.on("error", (error) => reject(new RuntimeApiError(`HAProxy runtime API unreachable at ${socketPath}: ${error.message}`)));
      socket.on("close", () => resolve(answer.trim()));
    });
  const expectEmpty = async (command: string) => {
    const answer = await send(command);
    if (answer !== "") throw new RuntimeApiError(`HAProxy refused "${command.split(" ").slice(0, 2).join(" ")}": ${answer}`);
  };
  return {
    async addMapEntry(map, key, value) {
      check(map, key, value);
      await expectEmpty(`add map ${map} ${key} ${value}`);
    },
    async setOrAddMapEntry(map, key, value) {
      check(map, key, value);
      const current = await this.showMap(map);
      if (current.get(key) === value) return;
      if (current.has(key)) await this.delMapEntry(map, key);
      await expectEmpty(`add map ${map} ${key} ${value}`);
    },
    async delMapEntry(map, key) {
      check(map, key);
      const answer = await send(`del map ${map} ${key}`);
      // Deleting what is not there is what we wanted anyway.
      if (answer !== "" && !/not found/i.test(answer)) throw new RuntimeApiError(`HAProxy refused "del map": ${answer}`);
    },
    async showMap(map) {
      check(map);
      const answer = await send(`show map ${map}`);
      if (/^(Unknown|No such|Missing)/i.test(answer)) throw new RuntimeApiError(`HAProxy: ${answer}`);
      const entries = new Map<string, string>();
      for (const line of answer.split("\n")) {
        const [, key, value] = line.trim().split(/\s+/); // "<id> <key> <value>"
        if (key && value) entries.set(key, value);
      }
      return entries;
    },
    async processId() {
      const pid = /^Pid:\s*(\d+)/m.exec(await send("show info"))?.[1];
      if (!pid) throw new RuntimeApiError("HAProxy's show info named no pid.");
      return pid;
    },
  };
}
