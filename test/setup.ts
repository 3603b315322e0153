// Preloaded by `bun test` (bunfig.toml): keep server logs out of test output unless asked for.
import { setDefaultTimeout } from "bun:test";
import type { LogLevel } from "../src/config";
import { setLogLevel } from "../src/log";

process.env.LOG_LEVEL ??= "silent";
// The level is process-wide and only main.ts sets it in production; tests set it here once.
setLogLevel(process.env.LOG_LEVEL as LogLevel);

// bunfig.toml's [test] timeout is not applied by this Bun (tests and hooks stop at 5 s); end-to-end tests
// start servers and processes, and the first embedded database runs initdb.
setDefaultTimeout(60_000);
