/**
 * Which broker an instance uses, chosen once at start: on PostgreSQL with CLUSTER_FANOUT on, the
 * LISTEN/NOTIFY broker; otherwise (embedded database, one process by construction, or fan-out off) the
 * local one. A new broker (e.g. NATS) is a folder beside ./postgres/ and one more branch here.
 */
import type { Config } from "../config";
import type { Database } from "../db/client";
import { LocalBroker, type Broker } from "../realtime/broker";
import { PostgresBroker } from "./postgres/postgres-broker";

export function chooseBroker(config: Config, database: Database): Broker {
  if (database.kind === "postgres" && database.pg && config.databaseUrl && config.clusterFanout) {
    return new PostgresBroker({ url: config.databaseUrl, listener: database.pg });
  }
  return new LocalBroker();
}
