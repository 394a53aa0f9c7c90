"use strict";
// Loaded with --require into the Next.js server process (scripts/serve.ts): see h2c-upgrade.cjs.
require("./h2c-upgrade.cjs").installForEveryServer();
