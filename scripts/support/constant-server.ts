import { spawn } from "node:child_process";
import { freePort } from "./ports";

/**
 * The most a Node.js HTTP listener can answer on this machine: a process of its own, as the
 * lean authorization listener is, with node:http answering every call with a constant JSON
 * body after reading the request's body. Driven by the same load generator with the same
 * connections, calls and duration, it is the baseline the listener's rate is a share of.
 */
const SERVER = `
const http = require("node:http");
const body = '{"active":true}';
http
  .createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json", "content-length": body.length }).end(body));
  })
  .listen(Number(process.argv[1]), "localhost", () => console.log("listening"));
`;

export async function startConstantServer(): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const child = spawn(process.execPath, ["-e", SERVER, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("listening") && resolve());
    child.on("exit", (code) => reject(new Error(`the constant-answer server exited (${code})`)));
  });
  return { url: `http://localhost:${port}`, stop: () => child.kill("SIGTERM") };
}
