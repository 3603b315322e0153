/**
 * A small flag parser for the operator commands: `--flag value`, `--flag=value`, repeatable flags and
 * switches, positionals, and one-line errors for anything it does not know.
 */
import { UsageError } from "./usage-error";

export type FlagKind = "string" | "list" | "switch";

export interface FlagSpec {
  kind: FlagKind;
  /** Placeholder shown in help, e.g. `EMAIL`. */
  value?: string;
  help: string;
}

export interface ParsedArgs {
  strings: Record<string, string>;
  lists: Record<string, string[]>;
  switches: Set<string>;
  positionals: string[];
}

export function parseArgs(argv: string[], flags: Record<string, FlagSpec>, command: string): ParsedArgs {
  const parsed: ParsedArgs = { strings: {}, lists: {}, switches: new Set(), positionals: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--")) {
      if (arg.startsWith("-") && arg.length > 1) throw new UsageError(`${command}: unknown flag ${arg} (try --help)`);
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const spec = flags[name];
    if (!spec) throw new UsageError(`${command}: unknown flag --${name} (try --help)`);
    if (spec.kind === "switch") {
      if (eq >= 0) throw new UsageError(`${command}: --${name} takes no value`);
      parsed.switches.add(name);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) value = argv[++i];
    if (value === undefined || value === "") throw new UsageError(`${command}: --${name} needs a value`);
    if (spec.kind === "list") (parsed.lists[name] ??= []).push(value);
    else if (name in parsed.strings) throw new UsageError(`${command}: --${name} given twice`);
    else parsed.strings[name] = value;
  }
  return parsed;
}

export function flagHelp(flags: Record<string, FlagSpec>): string {
  const rows = Object.entries(flags).map(([name, spec]) => {
    const value = spec.value ? ` ${spec.value}` : "";
    const repeat = spec.kind === "list" ? "..." : "";
    return [`--${name}${value}${repeat}`, spec.help];
  });
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join("\n");
}
