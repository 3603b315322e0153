/**
 * The per-test timeout of tests that start servers and processes: more than the runner's 5 s default.
 *
 * The runner applies setDefaultTimeout to the file being loaded when it is called, and resets it for the
 * next file. A call in the preload (test/setup.ts) or at the top of a shared module (evaluated once, for
 * the first file that imports it) therefore covers one file only, and bunfig.toml has no timeout setting
 * the runner honours. So each such test file calls this once, at its top.
 */
import { setDefaultTimeout } from "bun:test";

export const END_TO_END_TIMEOUT_MS = 60_000;

export function useEndToEndTimeout(): void {
  setDefaultTimeout(END_TO_END_TIMEOUT_MS);
}
