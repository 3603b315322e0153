/**
 * PGlite's WebAssembly and file-system bundle, embedded into the executable by Bun's bundler. A compiled
 * binary has no node_modules to read them from, so they are imported as files and handed to PGlite.
 */
import initdbWasmPath from "../../node_modules/@electric-sql/pglite/dist/initdb.wasm" with { type: "file" };
import pgliteDataPath from "../../node_modules/@electric-sql/pglite/dist/pglite.data" with { type: "file" };
import pgliteWasmPath from "../../node_modules/@electric-sql/pglite/dist/pglite.wasm" with { type: "file" };

export interface PgliteAssets {
  pgliteWasmModule: WebAssembly.Module;
  /** Only when initdb will run: a data directory seeded or already created does not need it. */
  initdbWasmModule?: WebAssembly.Module;
  fsBundle: Blob;
}

let pglite: Promise<{ pgliteWasmModule: WebAssembly.Module; fsBundle: Blob }> | undefined;
let initdb: Promise<WebAssembly.Module> | undefined;

const compile = async (path: string) => WebAssembly.compile(await Bun.file(path).arrayBuffer());

/** Compiled once per process: tests open many embedded databases. */
export async function loadPgliteAssets(options: { initdb: boolean } = { initdb: true }): Promise<PgliteAssets> {
  pglite ??= (async () => {
    const [pgliteWasmModule, bundle] = await Promise.all([compile(pgliteWasmPath), Bun.file(pgliteDataPath).arrayBuffer()]);
    // A Blob over the bytes, not Bun.file(): the latter hangs PGlite inside a compiled binary.
    return { pgliteWasmModule, fsBundle: new Blob([bundle]) };
  })();
  if (!options.initdb) return pglite;
  initdb ??= compile(initdbWasmPath);
  const [assets, initdbWasmModule] = await Promise.all([pglite, initdb]);
  return { ...assets, initdbWasmModule };
}
