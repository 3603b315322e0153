/**
 * Bundles the web console (src/console/) for the browser with Bun's own bundler: its HTML page, one
 * minified script and one stylesheet, the latter two with content-hashed names under /console/assets/.
 * build.ts runs it before compiling the executable, which embeds the result; run from source, the
 * server runs it on the first request of /console (./bundle.ts).
 */
import { join } from "node:path";

export const CONSOLE_ENTRY = join(import.meta.dir, "../../console/index.html");
export const ASSETS_PATH = "/console/assets/";

export interface BuiltFile {
  /** `index.html`, or an asset's hashed name. */
  name: string;
  type: string;
  text: string;
}

export async function buildConsoleBundle(): Promise<BuiltFile[]> {
  const result = await Bun.build({
    entrypoints: [CONSOLE_ENTRY],
    target: "browser",
    minify: true,
    publicPath: ASSETS_PATH,
    naming: { entry: "[name]-[hash].[ext]", chunk: "[name]-[hash].[ext]", asset: "[name]-[hash].[ext]" },
    // Preact's JSX settings come from src/console/tsconfig.json; the production runtime, without source locations.
    jsx: { development: false },
  });
  if (!result.success) throw new AggregateError(result.logs, "The console did not build");
  return Promise.all(
    result.outputs.map(async (output) => {
      const name = output.path.replace(/^\.\//, "");
      return { name: output.kind === "entry-point" && name.endsWith(".html") ? "index.html" : name, type: output.type, text: await output.text() };
    }),
  );
}
