/**
 * Builds the publishable SDK into packages/client/dist from src/client: `index.js` for browsers, Bun and
 * Deno (the global WebSocket), `node.js` for Node (the same code with the `ws` package), and `.d.ts` files.
 * Usage: bun run build:sdk   (then `npm pack` in packages/client)
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { $ } from "bun";

const packageDir = import.meta.dir;
const source = join(packageDir, "../../src/client");
const outdir = join(packageDir, "dist");

rmSync(outdir, { recursive: true, force: true });

const builds: Parameters<typeof Bun.build>[0][] = [
  { entrypoints: [join(source, "index.ts")], target: "browser" },
  // ws stays an import: the package depends on it, and only this entry loads it.
  { entrypoints: [join(source, "node.ts")], target: "node", external: ["ws"] },
];
for (const build of builds) {
  const result = await Bun.build({ ...build, outdir, format: "esm", sourcemap: "linked" });
  if (!result.success) {
    for (const message of result.logs) console.error(message);
    process.exit(1);
  }
}

await $`${join(packageDir, "../../node_modules/.bin/tsc")} -p ${join(packageDir, "tsconfig.json")}`;

for (const file of ["index.js", "node.js", "index.d.ts"]) {
  console.log(`built packages/client/dist/${file} (${(Bun.file(join(outdir, file)).size / 1024).toFixed(1)} KiB)`);
}
