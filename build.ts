/**
 * Builds the single executable `dist/symbia-messaging`: the server, its migrations, the embedded
 * database's WebAssembly and data bundle, a migrated data directory for its first start, and the web
 * console's bundle (src/console/), with no node_modules needed at run time.
 */
import { $ } from "bun";
import { buildDataDirSeed, SEED_PATH } from "./scripts/build-data-dir-seed";
import { buildConsoleBundle } from "./src/modules/console/build-bundle";

await $`bun run scripts/embed-migrations.ts`.quiet();
const seed = await buildDataDirSeed();
const consoleFiles = await buildConsoleBundle();

/** Swaps src/db/data-dir-seed.ts (no seed when run from source) for one that embeds the seed just built. */
const embedSeed: Bun.BunPlugin = {
  name: "embed-data-dir-seed",
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]db[\\/]data-dir-seed\.ts$/ }, () => ({
      loader: "ts",
      contents: [
        `import seedPath from ${JSON.stringify(SEED_PATH)} with { type: "file" };`,
        // The bytes rather than the file: embedded files are read like the PGlite assets.
        "export async function dataDirSeed() { return new Blob([await Bun.file(seedPath).arrayBuffer()]); }",
      ].join("\n"),
    }));
  },
};

/** Swaps src/modules/console/bundle.ts (which bundles on first use) for the console built just now. */
const embedConsole: Bun.BunPlugin = {
  name: "embed-console",
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]modules[\\/]console[\\/]bundle\.ts$/ }, () => ({
      loader: "ts",
      contents: `const FILES = ${JSON.stringify(consoleFiles)};\nexport async function consoleBundle() { return FILES; }\n`,
    }));
  },
};

const result = await Bun.build({
  entrypoints: ["./src/main.ts"],
  compile: { outfile: "./dist/symbia-messaging" },
  minify: true,
  sourcemap: "linked",
  target: "bun",
  plugins: [embedSeed, embedConsole],
});

if (!result.success) {
  for (const message of result.logs) console.error(message);
  process.exit(1);
}
const size = Bun.file("./dist/symbia-messaging").size;
const consoleBytes = consoleFiles.reduce((total, file) => total + Buffer.byteLength(file.text), 0);
console.log(
  `built dist/symbia-messaging (${(size / 1024 / 1024).toFixed(1)} MiB, data directory seed ` +
    `${(seed.bytes / 1024 / 1024).toFixed(1)} MiB with ${seed.migrations.length} migrations, ` +
    `console ${(consoleBytes / 1024).toFixed(1)} KiB in ${consoleFiles.length} files)`,
);
