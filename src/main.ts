#!/usr/bin/env bun
/**
 * The executable's command line: `serve` (default), `migrate`, `version`, and the operator commands for
 * principals (see src/cli/).
 */
import { runDoctor } from "./cli/doctor";
import { OPERATOR_COMMANDS, operatorHelpLines, runOperatorCommand } from "./cli/identity-commands";
import { UsageError } from "./cli/usage-error";
import { ConfigError, loadConfig } from "./config";
import { DatabaseUnavailableError, openDatabase } from "./db/client";
import { DataDirInUseError } from "./db/data-dir-lock";
import { migrate } from "./db/migrate";
import { log, setLogLevel } from "./log";
import { startServer, stopOnSignals } from "./server";
import { SERVICE_NAME, VERSION } from "./version";

const HELP = `${SERVICE_NAME} ${VERSION}: real-time messaging bus for users, agents and services

Usage: ${SERVICE_NAME} [command] [flags]

Commands:
  serve        run the server (default)
  migrate      apply database migrations and exit
  doctor       check the configuration, the database and the data directory
  version      print the version
  help         show this help
${operatorHelpLines().join("\n")}

Run "${SERVICE_NAME} <command> --help" for the flags of users, keys, orgs and webhooks commands.

Configuration comes from environment variables (PORT, HOST, DATABASE_URL, DATA_DIR, SYMBIA_ENV,
LOG_LEVEL, ...); see the README. Without DATABASE_URL the embedded database in DATA_DIR (./data) is used.
`;

function fail(message: string): never {
  process.stderr.write(`${SERVICE_NAME}: ${message}\n`);
  process.exit(1);
}

async function main(argv: string[]): Promise<void> {
  const [command = "serve", ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(HELP);
    return;
  }
  if (command === "version" || command === "--version" || command === "-v") {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (command === "doctor") {
    process.exitCode = await runDoctor(rest);
    return;
  }
  if (OPERATOR_COMMANDS.includes(command)) {
    await runOperatorCommand(command, rest);
    return;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  const config = loadConfig();
  setLogLevel(config.logLevel);

  switch (command) {
    case "serve": {
      if (rest.length > 0) throw new UsageError(`serve takes no arguments, got "${rest.join(" ")}" (try --help)`);
      const server = await startServer(config);
      log.info("listening", {
        url: server.url,
        database: server.services.database.kind === "postgres" ? "postgres" : `embedded (${config.dataDir})`,
        env: config.env,
        version: VERSION,
      });
      stopOnSignals(server);
      return;
    }
    case "migrate": {
      if (rest.length > 0) throw new UsageError(`migrate takes no arguments (try --help)`);
      const database = await openDatabase({ databaseUrl: config.databaseUrl, poolSize: 2, dataDir: config.dataDir });
      try {
        const applied = await migrate(database.db);
        process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
      } finally {
        await database.close();
      }
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}" (try --help)`);
  }
}

main(process.argv.slice(2)).catch((error) => {
  if (
    error instanceof UsageError ||
    error instanceof ConfigError ||
    error instanceof DatabaseUnavailableError ||
    error instanceof DataDirInUseError
  ) {
    fail(error.message);
  }
  if ((error as NodeJS.ErrnoException)?.code === "EADDRINUSE") fail(`port is already in use: ${(error as Error).message}`);
  fail(error instanceof Error ? error.message : String(error));
});
