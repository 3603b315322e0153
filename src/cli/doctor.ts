/**
 * `symbia-messaging doctor`: what an operator checks first when something is off, in one command run with
 * the server's environment. It reads and reports; the only thing it changes is what opening the database
 * does anyway. Exit code 0 when nothing needs attention, 1 otherwise.
 */
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { ConfigError, loadConfig, type Config } from "../config";
import { openPglite, openPostgres, rows, type Database } from "../db/client";
import { isInitialised, pgdataOf } from "../db/data-dir";
import { dataDirHolder } from "../db/data-dir-lock";
import { MIGRATIONS } from "../db/migrations.generated";
import { SERVICE_NAME, VERSION } from "../version";
import { flagHelp, parseArgs, type FlagSpec } from "./args";
import { UsageError } from "./usage-error";

export type CheckStatus = "ok" | "note" | "warn" | "fail";

export interface Check {
  status: CheckStatus;
  name: string;
  detail: string;
}

const FLAGS: Record<string, FlagSpec> = {
  json: { kind: "switch", help: "print the checks and settings as JSON" },
};

export const DOCTOR_HELP = `Usage: ${SERVICE_NAME} doctor [--json]

Checks the configuration, the database (reachable, migrations applied against those this executable
carries) and the embedded database's data directory (its permissions), and prints the settings in force
with secrets hidden. Exits 1 when something needs attention. Run it with the server's environment.

${flagHelp(FLAGS)}
`;

// ---------------------------------------------------------------- secrets

const SECRET_NAME = /password|secret|token/i;

/** A URL with its password replaced; other values unchanged. */
export function hidePassword(value: string): string {
  try {
    const url = new URL(value);
    if (!url.password) return value;
    url.password = "*****";
    return url.toString();
  } catch {
    return value;
  }
}

/** The settings in force, as printed: secrets replaced by "(set)", passwords in URLs hidden. */
export function visibleSettings(config: Config): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [name, value] of Object.entries(config)) {
    if (value === undefined) out[name] = null;
    else if (SECRET_NAME.test(name)) out[name] = "(set)";
    else if (typeof value === "string") out[name] = hidePassword(value);
    else out[name] = value as number | boolean;
  }
  return out;
}

// ---------------------------------------------------------------- the data directory

interface ModeReport {
  entries: number;
  /** Paths (relative) that group or others may read, write or enter. */
  open: string[];
  /** Paths owned by another user than the one running this check. */
  foreign: string[];
}

function inspectModes(dir: string): ModeReport {
  const report: ModeReport = { entries: 0, open: [], foreign: [] };
  const uid = process.getuid?.();
  const visit = (path: string, relative: string) => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return;
    report.entries++;
    if (stat.mode & 0o077) report.open.push(`${relative || "."} (${(stat.mode & 0o777).toString(8).padStart(4, "0")})`);
    if (uid !== undefined && stat.uid !== uid) report.foreign.push(relative || ".");
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry), relative ? `${relative}/${entry}` : entry);
  };
  visit(dir, "");
  return report;
}

function dataDirCheck(dir: string): Check {
  let report: ModeReport;
  try {
    report = inspectModes(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return { status: "note", name: "data directory", detail: `${dir} does not exist yet; the first start creates it (mode 0700)` };
    }
    return { status: "fail", name: "data directory", detail: `cannot read ${dir}: ${(error as Error).message}` };
  }
  const mode = lstatSync(dir).mode & 0o777;
  const octal = mode.toString(8).padStart(4, "0");
  if (report.foreign.length > 0) {
    return {
      status: "warn",
      name: "data directory",
      detail: `${dir}: ${report.foreign.length} of ${report.entries} entries belong to another user (e.g. ${report.foreign[0]}); run this check as the service's user`,
    };
  }
  const examples = report.open.filter((p) => !p.startsWith(". ")).slice(0, 3).join(", ");
  const inside = report.open.length - (mode & 0o077 ? 1 : 0);
  if (mode & 0o077) {
    return {
      status: "warn",
      name: "data directory",
      detail:
        `${dir} (mode ${octal}) is open to group or others` +
        (inside > 0 ? `, and so are ${inside} of the ${report.entries - 1} entries inside (e.g. ${examples})` : "") +
        `; the next start of the server makes it private (0700, files 0600)`,
    };
  }
  if (inside > 0) {
    // Behind a 0700 directory nobody else reaches them; PostgreSQL creates a few such files while it runs.
    return {
      status: "note",
      name: "data directory",
      detail: `${dir} (mode ${octal}): ${inside} of the ${report.entries - 1} entries inside have looser modes (e.g. ${examples}), unreachable through the directory; the server makes them private at start and stop`,
    };
  }
  return { status: "ok", name: "data directory", detail: `${dir} (mode ${octal}): ${report.entries} entries, none open to group or others` };
}

// ---------------------------------------------------------------- the database

async function migrationsCheck(database: Database): Promise<Check> {
  const [table] = await rows<{ name: string | null }>(database.db, sql`select to_regclass('symbia_migrations')::text as name`);
  const applied = table?.name ? (await rows<{ tag: string }>(database.db, sql`select tag from symbia_migrations`)).map((r) => r.tag) : [];
  const embedded = MIGRATIONS.map((m) => m.tag);
  const pending = embedded.filter((tag) => !applied.includes(tag));
  const unknown = applied.filter((tag) => !embedded.includes(tag));
  const counts = `${applied.length} applied, ${embedded.length} in this executable`;
  if (unknown.length > 0) {
    return {
      status: "warn",
      name: "migrations",
      detail: `${counts}: the database has ${unknown.join(", ")}, unknown to this version (${VERSION}): a newer version migrated it`,
    };
  }
  if (pending.length > 0) {
    return { status: "note", name: "migrations", detail: `${counts}: ${pending.join(", ")} will be applied at the next start (or by \`migrate\`)` };
  }
  return { status: "ok", name: "migrations", detail: `${counts}: up to date (${embedded.at(-1) ?? "none"})` };
}

async function withDatabase(database: Database, checks: Check[], reachable: string): Promise<void> {
  try {
    checks.push({ status: "ok", name: "reachable", detail: reachable });
    checks.push(await migrationsCheck(database));
  } finally {
    await database.close();
  }
}

async function postgresChecks(config: Config, checks: Check[]): Promise<void> {
  const url = config.databaseUrl!;
  checks.push({ status: "ok", name: "database", detail: `PostgreSQL at ${hidePassword(url)}` });
  const began = performance.now();
  let database: Database;
  try {
    database = await openPostgres(url, 1);
  } catch (error) {
    checks.push({ status: "fail", name: "reachable", detail: (error as Error).message });
    return;
  }
  await withDatabase(database, checks, `answered in ${Math.round(performance.now() - began)} ms`);
}

/** The server holding the embedded database answers for it: its health endpoint runs a query. */
async function serverHealth(config: Config): Promise<boolean> {
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  try {
    const response = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${config.port}/api/health`, { signal: AbortSignal.timeout(3000) });
    return response.status === 200;
  } catch {
    return false;
  }
}

async function embeddedChecks(config: Config, checks: Check[]): Promise<void> {
  checks.push({ status: "ok", name: "database", detail: `embedded PostgreSQL (PGlite) in ${config.dataDir}` });
  checks.push(dataDirCheck(config.dataDir));
  if (!isInitialised(pgdataOf(config.dataDir))) {
    checks.push({ status: "note", name: "reachable", detail: "no database yet: the first start creates it, migrated" });
    return;
  }
  const holder = dataDirHolder(config.dataDir);
  if (holder) {
    if (await serverHealth(config)) {
      checks.push({ status: "ok", name: "reachable", detail: `in use by the running server (process ${holder}), which answers /api/health` });
      checks.push({ status: "note", name: "migrations", detail: "applied by the running server at its start (stop it to compare them here)" });
    } else {
      checks.push({
        status: "fail",
        name: "reachable",
        detail: `in use by process ${holder}, which does not answer /api/health on port ${config.port}`,
      });
    }
    return;
  }
  const began = performance.now();
  let database: Database;
  try {
    database = (await openPglite({ dataDir: config.dataDir, keepModes: true })).database;
  } catch (error) {
    checks.push({ status: "fail", name: "reachable", detail: (error as Error).message });
    return;
  }
  await withDatabase(database, checks, `opened in ${Math.round(performance.now() - began)} ms`);
}

// ---------------------------------------------------------------- the command

export interface DoctorReport {
  checks: Check[];
  settings?: Record<string, string | number | boolean | null>;
  healthy: boolean;
}

export async function diagnose(env: Record<string, string | undefined> = process.env): Promise<DoctorReport> {
  const checks: Check[] = [{ status: "ok", name: "version", detail: `${SERVICE_NAME} ${VERSION} (Bun ${Bun.version})` }];
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    checks.push({ status: "fail", name: "configuration", detail: error.message });
    return { checks, healthy: false };
  }
  checks.push({ status: "ok", name: "configuration", detail: `valid (SYMBIA_ENV=${config.env})` });
  if (config.databaseUrl) await postgresChecks(config, checks);
  else await embeddedChecks(config, checks);
  const healthy = checks.every((c) => c.status === "ok" || c.status === "note");
  return { checks, settings: visibleSettings(config), healthy };
}

const LABEL: Record<CheckStatus, string> = { ok: "ok", note: "note", warn: "WARN", fail: "FAIL" };

export function formatReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = report.checks.map((c) => `${LABEL[c.status].padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
  if (report.settings) {
    lines.push("", "settings in force (secrets hidden):");
    const keyWidth = Math.max(...Object.keys(report.settings).map((k) => k.length));
    for (const [name, value] of Object.entries(report.settings)) lines.push(`  ${name.padEnd(keyWidth)}  ${value ?? "-"}`);
  }
  const problems = report.checks.filter((c) => c.status === "warn" || c.status === "fail").length;
  lines.push("", problems ? `${problems} problem${problems > 1 ? "s" : ""} found` : "no problems found");
  return lines.join("\n") + "\n";
}

/** Runs the command; returns the exit code. */
export async function runDoctor(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(DOCTOR_HELP);
    return 0;
  }
  const args = parseArgs(argv, FLAGS, "doctor");
  if (args.positionals.length > 0) throw new UsageError("doctor takes no arguments (try --help)");
  const report = await diagnose();
  process.stdout.write(args.switches.has("json") ? JSON.stringify(report, null, 2) + "\n" : formatReport(report));
  return report.healthy ? 0 : 1;
}
