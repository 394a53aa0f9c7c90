import type { Server } from "node:http";

export function answerUpgradesAsHttp1<T extends Server>(server: T, options?: { all?: boolean }): T;
export function installForEveryServer(): void;
