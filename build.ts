/**
 * Builds the single executable `dist/symbia-messaging`: the server, its migrations and the embedded
 * database's WebAssembly and data bundle, with no node_modules needed at run time.
 */
import { $ } from "bun";

await $`bun run scripts/embed-migrations.ts`.quiet();

const result = await Bun.build({
  entrypoints: ["./src/main.ts"],
  compile: { outfile: "./dist/symbia-messaging" },
  minify: true,
  sourcemap: "linked",
  target: "bun",
});

if (!result.success) {
  for (const message of result.logs) console.error(message);
  process.exit(1);
}
const size = Bun.file("./dist/symbia-messaging").size;
console.log(`built dist/symbia-messaging (${(size / 1024 / 1024).toFixed(1)} MiB)`);
