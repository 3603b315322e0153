// Preloaded by `bun test` (bunfig.toml): keep server logs out of test output unless asked for.
import type { LogLevel } from "../src/config";
import { setLogLevel } from "../src/log";

process.env.LOG_LEVEL ??= "silent";
// The level is process-wide and only main.ts sets it in production; tests set it here once.
setLogLevel(process.env.LOG_LEVEL as LogLevel);

// The runner's 5 s per-test default is raised by each test file that needs it (test/support/timeout.ts):
// setDefaultTimeout here would cover the first file of a run only.
