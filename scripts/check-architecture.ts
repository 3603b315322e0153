/**
 * Checks the shape of src/ from its imports: no import cycle between files or between folders, and the
 * layering rules below. `bun run check:architecture` prints what breaks them (exit 1) or a summary;
 * test/architecture.test.ts runs the same check in the suite.
 *
 * Type-only imports count: a type import is still a dependency of the code that reads it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export interface Rule {
  /** Files the rule applies to (paths relative to the repository root). */
  files: RegExp;
  /** Imports they must not have: repository-relative paths of src files, or bare package names. */
  forbidden: RegExp;
  why: string;
}

export const RULES: Rule[] = [
  {
    files: /^src\/core\//,
    forbidden: /^src\/(?!core\/|log\.ts$|config\.ts$)|^(elysia|drizzle-orm|postgres|@electric-sql)/,
    why: "the core knows no transport, database or feature",
  },
  {
    files: /^src\/domain\/|^src\/modules\/[^/]+\/service\.ts$/,
    forbidden: /^src\/(http|realtime|broker)\/|^elysia$/,
    why: "the domain and the services know no transport",
  },
  {
    files: /^src\/realtime\/(hub|join)\.ts$/,
    forbidden: /^src\/(db|broker|modules)\/|^src\/domain\/conversation-reads\.ts$|^src\/services\.ts$|^(drizzle-orm|postgres|@electric-sql)/,
    why: "the hub reads through its store and relays through its broker",
  },
  {
    files: /^src\/realtime\//,
    forbidden: /^src\/broker\//,
    why: "the realtime layer depends on the broker interface only",
  },
  {
    files: /^src\/client\//,
    forbidden: /^src\/(?!client\/)/,
    why: "the SDK ships on its own: it imports nothing of the server",
  },
  {
    files: /^src\/console\//,
    forbidden: /^src\/(?!console\/|client\/)|^(?!src\/|preact$)/,
    why: "the console is browser code: it talks to the server through the SDK only, and runs on Preact alone",
  },
  {
    files: /^src\/(?!console\/)/,
    forbidden: /^src\/console\//,
    why: "the server bundles the console by path (src/modules/console/build-bundle.ts), it never imports it",
  },
];

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(name) && !name.endsWith(".d.ts")) files.push(path);
  }
  return files;
}

function resolveImport(root: string, from: string, specifier: string): string {
  if (!specifier.startsWith(".")) return specifier.startsWith("node:") ? specifier : specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");
  const base = resolve(dirname(from), specifier);
  for (const candidate of [base, `${base}.ts`, `${base}.tsx`, join(base, "index.ts")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return relative(root, candidate);
  }
  return relative(root, base);
}

/** Imports of every file under src/, as repository-relative paths (packages by name). */
export function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(join(root, "src"))) {
    const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    const imports = new Set<string>();
    for (const match of text.matchAll(IMPORT)) imports.add(resolveImport(root, file, match[1] ?? match[2]));
    graph.set(relative(root, file), [...imports]);
  }
  return graph;
}

/** Strongly connected components with more than one node (or a self-loop): the cycles. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    indices.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, indices.get(next)!));
    }
    if (low.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)?.has(node)) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!indices.has(node)) visit(node);
  return found;
}

/** A file's folder for the folder graph: `src/<folder>` (modules by feature), or the file itself at the top. */
function folderOf(path: string): string {
  const parts = path.split("/");
  if (parts[1] === "modules" && parts.length > 3) return parts.slice(0, 3).join("/");
  return parts.length > 2 ? parts.slice(0, 2).join("/") : path;
}

export interface ArchitectureReport {
  files: number;
  fileCycles: string[][];
  folderCycles: string[][];
  violations: string[];
}

export function checkArchitecture(root: string): ArchitectureReport {
  const graph = importGraph(root);
  const fileGraph = new Map([...graph].map(([file, imports]) => [file, new Set(imports.filter((i) => i.startsWith("src/")))]));
  const folderGraph = new Map<string, Set<string>>();
  for (const [file, imports] of fileGraph) {
    const from = folderOf(file);
    const edges = folderGraph.get(from) ?? new Set<string>();
    folderGraph.set(from, edges);
    for (const target of imports) if (folderOf(target) !== from) edges.add(folderOf(target));
  }
  const violations: string[] = [];
  for (const [file, imports] of graph) {
    for (const rule of RULES) {
      if (!rule.files.test(file)) continue;
      for (const target of imports) if (rule.forbidden.test(target)) violations.push(`${file} imports ${target}: ${rule.why}`);
    }
  }
  return { files: graph.size, fileCycles: cycles(fileGraph), folderCycles: cycles(folderGraph), violations };
}

if (import.meta.main) {
  const report = checkArchitecture(resolve(import.meta.dir, ".."));
  const problems = [
    ...report.fileCycles.map((c) => `file cycle: ${c.join(" <-> ")}`),
    ...report.folderCycles.map((c) => `folder cycle: ${c.join(" <-> ")}`),
    ...report.violations,
  ];
  for (const problem of problems) console.error(problem);
  console.log(`${report.files} files: ${report.fileCycles.length} file cycles, ${report.folderCycles.length} folder cycles, ${report.violations.length} rule violations`);
  process.exit(problems.length > 0 ? 1 : 0);
}
