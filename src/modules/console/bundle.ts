/**
 * The console's built files. Run from source they are built on first use (./build-bundle.ts), once per
 * process; build.ts replaces this module with one that embeds the files it built before compiling, so
 * the executable carries them and never bundles at run time.
 */
import { buildConsoleBundle, type BuiltFile } from "./build-bundle";

let built: Promise<BuiltFile[]> | undefined;

export function consoleBundle(): Promise<BuiltFile[]> {
  built ??= buildConsoleBundle().catch((error) => {
    built = undefined;
    throw error;
  });
  return built;
}
