"use strict";
/**
 * HTTP/1.1 clients may ask to switch to cleartext HTTP/2 (`Upgrade: h2c`, with
 * `HTTP2-Settings`); the JDK's default HttpClient does on every first request. The
 * upgrade is optional for the server (RFC 7540 section 3.2): it may answer in HTTP/1.1.
 * Node hands such a request to the server's "upgrade" listeners instead, and Next.js's
 * listener drops the connection, so those clients got no answer at all. This replays the
 * request, without its upgrade headers, as an ordinary HTTP/1.1 request on the same
 * connection. Plain CommonJS: the Next.js server process loads it with --require.
 */
const http = require("node:http");

const UPGRADE_HEADERS = new Set(["upgrade", "http2-settings"]);

function onlyH2c(req) {
  const tokens = String(req.headers.upgrade || "")
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  return tokens.length > 0 && tokens.every((t) => t === "h2c");
}

/** The request head as the client sent it, less the upgrade. The parser already refused CR and LF in names and values. */
function headWithoutUpgrade(req) {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    const value = req.rawHeaders[i + 1];
    const lower = name.toLowerCase();
    if (UPGRADE_HEADERS.has(lower)) continue;
    if (lower === "connection") {
      const kept = value
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t && !UPGRADE_HEADERS.has(t.toLowerCase()));
      if (kept.length > 0) lines.push(`${name}: ${kept.join(", ")}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
}

/**
 * Makes `server` answer h2c upgrade requests in HTTP/1.1. With `all`, every upgrade request
 * is answered as an ordinary request (for a server that upgrades nothing); otherwise only
 * h2c, and other upgrades (WebSocket) still reach the server's own listeners.
 */
function answerUpgradesAsHttp1(server, options = {}) {
  if (server.__latchkeyH2c) return server;
  server.__latchkeyH2c = true;
  const emit = server.emit;
  server.emit = function (event, ...args) {
    if (event === "upgrade" && (options.all || onlyH2c(args[0]))) {
      const [req, socket, head] = args;
      socket.unshift(Buffer.concat([headWithoutUpgrade(req), head]));
      return emit.call(this, "connection", socket);
    }
    return emit.call(this, event, ...args);
  };
  // Node treats a request as an upgrade only while the server has an "upgrade" listener.
  if (options.all && server.listenerCount("upgrade") === 0) server.on("upgrade", () => undefined);
  return server;
}

/** For the Next.js process: every HTTP server it creates answers h2c upgrades in HTTP/1.1. */
function installForEveryServer() {
  const createServer = http.createServer;
  http.createServer = function (...args) {
    return answerUpgradesAsHttp1(createServer.apply(this, args));
  };
}

module.exports = { answerUpgradesAsHttp1, installForEveryServer };
