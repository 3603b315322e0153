/**
 * PGlite's WebAssembly and file-system bundle, embedded into the executable by Bun's bundler. A compiled
 * binary has no node_modules to read them from, so they are imported as files and handed to PGlite.
 */
import initdbWasmPath from "../../node_modules/@electric-sql/pglite/dist/initdb.wasm" with { type: "file" };
import pgliteDataPath from "../../node_modules/@electric-sql/pglite/dist/pglite.data" with { type: "file" };
import pgliteWasmPath from "../../node_modules/@electric-sql/pglite/dist/pglite.wasm" with { type: "file" };

export interface PgliteAssets {
  pgliteWasmModule: WebAssembly.Module;
  initdbWasmModule: WebAssembly.Module;
  fsBundle: Blob;
}

let cached: Promise<PgliteAssets> | undefined;

/** Compiled once per process: tests open many embedded databases. */
export function loadPgliteAssets(): Promise<PgliteAssets> {
  cached ??= (async () => {
    const [pgliteWasmModule, initdbWasmModule, bundle] = await Promise.all([
      WebAssembly.compile(await Bun.file(pgliteWasmPath).arrayBuffer()),
      WebAssembly.compile(await Bun.file(initdbWasmPath).arrayBuffer()),
      Bun.file(pgliteDataPath).arrayBuffer(),
    ]);
    // A Blob over the bytes, not Bun.file(): the latter hangs PGlite inside a compiled binary.
    return { pgliteWasmModule, initdbWasmModule, fsBundle: new Blob([bundle]) };
  })();
  return cached;
}
