/**
 * A second Latchkey instance in a process of its own, serving the SCIM routes on the same
 * database (the configuration comes from the environment the test passes), so a test can
 * send two identity-provider calls to two instances at once. Prints its address.
 */
import { startApiServer } from "./api-server";

const server = await startApiServer(["scim"]);
process.stdout.write(`scim instance at ${server.url}\n`);
