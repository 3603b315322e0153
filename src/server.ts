/**
 * Starting and stopping one server process: open the database, migrate, build the services and the app,
 * listen, and shut down gracefully on SIGTERM/SIGINT.
 */
import { createApp, createRealtimeHub, type App } from "./app";
import { startOperatorSocket } from "./operator/operator-socket";
import { startAuthRelay } from "./broker/postgres/auth-relay";
import { chooseBroker } from "./broker/choose-broker";
import { IdentityDirectory } from "./auth/identity-directory";
import type { Config } from "./config";
import { openDatabase, type Database } from "./db/client";
import { migrate } from "./db/migrate";
import { startMetricsListener } from "./http/metrics-endpoint";
import { describeError, log } from "./log";
import { startProcessMetrics } from "./metrics/registry";
import type { RealtimeHub } from "./realtime/hub";
import { createServices, type Services } from "./services";
import { WebhookDispatcher } from "./webhooks/dispatcher";

export interface RunningServer {
  app: App;
  services: Services;
  /** The WebSocket hub (connections, topics); tests read its counters. */
  realtime: RealtimeHub;
  port: number;
  url: string;
  /** The METRICS_PORT listener's port, when there is one. */
  metricsPort?: number;
  /** Stop accepting, finish in-flight requests, close sockets with 1001, close the database. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** An already open (and migrated) database; tests pass one. When absent the configured one is opened. */
  database?: Database;
  /** Hooks run after the services exist and before the port opens (e.g. creating the first admin). */
  beforeListen?: (services: Services) => Promise<void>;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const cleanups: (() => Promise<void>)[] = [];
  const database =
    options.database ??
    (await openDatabase({ databaseUrl: config.databaseUrl, poolSize: config.databasePoolSize, dataDir: config.dataDir }));
  try {
    if (!options.database) {
      const applied = await migrate(database.db);
      if (applied.length > 0) log.info("migrations applied", { migrations: applied });
    }
    const services = createServices(config, database);
    // Streams left open by a process that died are marked interrupted (docs/streaming.md, Durability).
    await services.streams.sweepUnheld(!options.database);
    services.streams.startSweeping();
    cleanups.push(() => services.streams.stop());
    const identityDirectory = new IdentityDirectory(database.db, services.authChanges);
    await identityDirectory.ensureBootstrapAdmin(config);
    const authRelay = await startAuthRelay(database, services.authChanges, { listen: true });
    cleanups.push(() => authRelay.stop());
    // Pairs a killed process wrote to but never hinted get their cursors before anything newer is sent.
    const webhookDispatcher = new WebhookDispatcher(database, services.webhooks, config.webhooks);
    await webhookDispatcher.discover();
    await options.beforeListen?.(services);
    const realtime = createRealtimeHub(services);
    cleanups.push(() => realtime.shutdown(0));
    const app = createApp(services, realtime);
    startProcessMetrics();
    app.listen({ port: config.port, hostname: config.host });
    realtime.attach(app.server!);
    const metricsListener = startMetricsListener(config);
    cleanups.push(async () => void metricsListener?.stop(true));
    // With PostgreSQL, other instances may serve the same conversations: relay frames and presence.
    const broker = chooseBroker(config, database);
    await realtime.useBroker(broker);
    cleanups.push(() => broker.stop());
    webhookDispatcher.start();
    cleanups.push(() => webhookDispatcher.stop(0));
    const adminSocket = config.adminSocket ? await startOperatorSocket(config.adminSocket, identityDirectory) : undefined;
    const port = app.server!.port!;
    const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        adminSocket?.stop();
        metricsListener?.stop(true);
        const server = app.server;
        if (server) {
          // Stops listening at once; the promise settles when in-flight requests have finished.
          const drained = server.stop(false);
          // Sockets are closed by us, with 1001, once the frames they already sent have been answered.
          await realtime.shutdown(config.shutdownTimeoutMs);
          await Promise.race([drained, Bun.sleep(config.shutdownTimeoutMs)]);
          server.stop(true);
        }
        // Attempts under way finish (or their lease runs out and another instance retries them).
        await webhookDispatcher.stop(config.shutdownTimeoutMs);
        // Open streams are written and end as interrupted while the broker can still announce it.
        await services.streams.stop();
        // After the sockets closed, so that the other instances heard their presence end.
        realtime.dropBroker();
        await broker.stop();
        await authRelay.stop();
        await database.close();
      })());
    return { app, services, realtime, port, url: `http://${host}:${port}`, metricsPort: metricsListener?.port, stop };
  } catch (error) {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
    if (!options.database) await database.close().catch(() => {});
    throw error;
  }
}

/** Runs until SIGTERM/SIGINT, then shuts down and exits 0 (1 if the shutdown itself failed). */
export function stopOnSignals(server: RunningServer): void {
  let signalled = false;
  const onSignal = (signal: string) => {
    if (signalled) return;
    signalled = true;
    log.info("shutting down", { signal });
    server.stop().then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (error) => {
        log.error("shutdown failed", describeError(error));
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
}
