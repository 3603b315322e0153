/**
 * Every setting of the service, read from the environment once and validated at start.
 * The README's configuration table lists the same names; keep the two in step.
 */
import { isIP } from "node:net";

export type Environment = "dev" | "stage" | "prod";
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

export interface Config {
  port: number;
  host: string;
  /** postgres:// URL; when absent the embedded database in `dataDir` is used. */
  databaseUrl?: string;
  databasePoolSize: number;
  /**
   * Cross-instance fan-out through LISTEN/NOTIFY (src/cluster/), started when `databaseUrl` is PostgreSQL.
   * On by default; CLUSTER_FANOUT=off leaves it out, for a single instance (and for benchmarks comparing the
   * two). With it off, instances sharing a database no longer hear each other's messages or presence
   * (logout and revocation still cross instances, through the auth relay).
   */
  clusterFanout: boolean;
  dataDir: string;
  env: Environment;
  logLevel: LogLevel;
  /** Public base URL used in bootstrap links; derived from host/port when unset. */
  publicUrl?: string;
  maxBodyBytes: number;
  maxMessageBytes: number;
  maxFrameBytes: number;
  replayLimit: number;
  typingTtlMs: number;
  heartbeatMs: number;
  /** Frames per second and burst of a connection of a person (a user's session or key). */
  wsRateLimitPerSecond: number;
  wsRateLimitBurst: number;
  /**
   * The same for a connection of an agent or a service (or of a service acting for a user): they send in
   * bursts (a service relaying a queue, an agent answering many conversations), so their budget is larger.
   */
  wsServiceRateLimitPerSecond: number;
  wsServiceRateLimitBurst: number;
  /** `message:send` frames of one connection in flight at once; sends into one conversation keep their order. */
  wsSendWindow: number;
  wsBackpressureBytes: number;
  sessionTtlMs: number;
  cookieSecure: boolean;
  credentialCacheMs: number;
  identityUrl?: string;
  identityCacheMs: number;
  /** How long a call to the remote Identity service may take before the request fails with 502. */
  identityTimeoutMs: number;
  /** First super admin, created at start when the database has no user yet. */
  adminEmail?: string;
  adminPassword?: string;
  /** Unix socket the operator CLI talks to while the server runs; undefined when ADMIN_SOCKET=off. */
  adminSocket?: string;
  loginMaxFailures: number;
  loginWindowMs: number;
  /**
   * Origins (besides the server's own) from which a browser may open the WebSocket with the session
   * cookie: `scheme://host[:port]`, lower case.
   */
  allowedOrigins: string[];
  /** Proxies (addresses or CIDRs) whose X-Forwarded-For names the client; none by default. */
  trustProxy: string[];
  shutdownTimeoutMs: number;
  /** Bearer token GET /metrics requires of every client; unset: loopback clients only, no token. */
  metricsToken?: string;
  /** A listener of its own for /metrics (then absent from the main port); unset: served on the main port. */
  metricsPort?: number;
  /** Streaming messages (docs/streaming.md): how often open streams' content is written. */
  streamFlushMs: number;
  /** A stream without an append for this long ends as interrupted. */
  streamIdleMs: number;
  streamMaxPerConnection: number;
  /** `message:append` frames have a bucket of their own, apart from every other frame. */
  wsAppendRateLimitPerSecond: number;
  wsAppendRateLimitBurst: number;
  /**
   * Coalesced sends (src/db/statement-batcher.ts): batches written at once on PostgreSQL, each on
   * conversations of its own (the embedded database always uses one), and the most sends in one batch.
   * One lane makes the largest batches, which is what the database gains most from (bench/README.md);
   * more lanes keep a write that waits for one conversation's lock from holding back as many others.
   */
  sendBatchLanes: number;
  sendBatchMax: number;
  webhooks: WebhookConfig;
}

/** Webhook delivery (docs/webhooks.md). */
export interface WebhookConfig {
  /** Deliver to loopback, private, link-local and metadata addresses too (tests, closed networks). */
  allowPrivate: boolean;
  /** How long one delivery attempt may take, connection and response included. */
  timeoutMs: number;
  /** Attempts of one delivery before it counts as failed. */
  maxAttempts: number;
  /** First retry delay; doubled per attempt, jittered, at most `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** An endpoint is disabled after this many failed attempts in a row. */
  disableAfterFailures: number;
  /** How often each instance looks for due deliveries (it also wakes when it enqueues). */
  pollMs: number;
  /** (Endpoint, conversation) pairs each instance delivers at once, one attempt in flight each. */
  concurrency: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must start with ${protocols.map((p) => p + "//").join(" or ")}`);
  }
  return raw.replace(/\/+$/, "");
}

/** ALLOWED_ORIGINS: comma-separated `http(s)://host[:port]`, nothing more (a path would never match). */
function origins(env: Env, name: string): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return [];
  return raw.split(",").map((entry) => {
    const text = entry.trim();
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw new ConfigError(`${name} entries must be origins like https://app.example.com, got "${text}"`);
    }
    if (!["http:", "https:"].includes(parsed.protocol) || parsed.origin.toLowerCase() !== text.toLowerCase().replace(/\/$/, "")) {
      throw new ConfigError(`${name} entries must be origins like https://app.example.com, got "${text}"`);
    }
    return parsed.origin.toLowerCase();
  });
}

/** TRUST_PROXY: comma-separated IPv4/IPv6 addresses or CIDR blocks. */
function proxies(env: Env, name: string): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return [];
  return raw.split(",").map((entry) => {
    const text = entry.trim();
    const [address, bits, extra] = text.split("/");
    const family = isIP(address ?? "");
    const maxBits = family === 4 ? 32 : 128;
    const validBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits);
    if (!family || !validBits || extra !== undefined) {
      throw new ConfigError(`${name} entries must be IP addresses or CIDR blocks like 10.0.0.0/8, got "${text}"`);
    }
    return text;
  });
}

const KIB = 1024;
const SECOND = 1000;
const DAY = 24 * 3600 * SECOND;

function adminSocketPath(env: Env, dataDir: string): string | undefined {
  const raw = env.ADMIN_SOCKET;
  if (raw === "off") return undefined;
  const path = raw || `${dataDir.replace(/\/+$/, "")}/admin.sock`;
  // sun_path holds 108 bytes including the terminating NUL.
  if (Buffer.byteLength(path) > 107) {
    throw new ConfigError(`ADMIN_SOCKET path is longer than 107 bytes (${path}); set ADMIN_SOCKET to a shorter path`);
  }
  return path;
}

function metricsToken(env: Env): string | undefined {
  const raw = env.METRICS_TOKEN;
  if (raw === undefined || raw === "") return undefined;
  // A scrape token travels in every request of a scraper: make it one that cannot be guessed.
  if (raw.length < 16 || !/^[\x21-\x7e]+$/.test(raw)) throw new ConfigError("METRICS_TOKEN must be at least 16 printable characters without spaces");
  return raw;
}

function bootstrapAdmin(env: Env): { adminEmail?: string; adminPassword?: string } {
  const adminEmail = env.SYMBIA_ADMIN_EMAIL || undefined;
  const adminPassword = env.SYMBIA_ADMIN_PASSWORD || undefined;
  if (Boolean(adminEmail) !== Boolean(adminPassword)) {
    throw new ConfigError("SYMBIA_ADMIN_EMAIL and SYMBIA_ADMIN_PASSWORD must be set together");
  }
  return { adminEmail, adminPassword };
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = env.DATA_DIR || "./data";
  return {
    port: integer(env, "PORT", 5005, 0, 65535),
    host: env.HOST || "0.0.0.0",
    databaseUrl: url(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    databasePoolSize: integer(env, "DATABASE_POOL_SIZE", 20, 1, 500),
    clusterFanout: boolean(env, "CLUSTER_FANOUT", true),
    dataDir,
    env: oneOf(env, "SYMBIA_ENV", ["dev", "stage", "prod"] as const, "dev"),
    logLevel: oneOf(env, "LOG_LEVEL", ["debug", "info", "warn", "error", "silent"] as const, "info"),
    publicUrl: url(env, "PUBLIC_URL", ["http:", "https:"]),
    maxBodyBytes: integer(env, "MAX_BODY_BYTES", 1024 * KIB, 1 * KIB, 64 * 1024 * KIB),
    maxMessageBytes: integer(env, "MAX_MESSAGE_BYTES", 64 * KIB, 1, 16 * 1024 * KIB),
    maxFrameBytes: integer(env, "MAX_FRAME_BYTES", 1024 * KIB, 1 * KIB, 64 * 1024 * KIB),
    replayLimit: integer(env, "REPLAY_LIMIT", 1000, 1, 100_000),
    typingTtlMs: integer(env, "TYPING_TTL_MS", 8 * SECOND, 100, 600 * SECOND),
    heartbeatMs: integer(env, "HEARTBEAT_MS", 30 * SECOND, 1 * SECOND, 600 * SECOND),
    wsRateLimitPerSecond: integer(env, "WS_RATE_LIMIT", 50, 1, 100_000),
    wsRateLimitBurst: integer(env, "WS_RATE_BURST", 100, 1, 100_000),
    wsServiceRateLimitPerSecond: integer(env, "WS_SERVICE_RATE_LIMIT", 1000, 1, 1_000_000),
    wsServiceRateLimitBurst: integer(env, "WS_SERVICE_RATE_BURST", 2000, 1, 1_000_000),
    wsSendWindow: integer(env, "WS_SEND_WINDOW", 64, 1, 10_000),
    wsBackpressureBytes: integer(env, "WS_BACKPRESSURE_BYTES", 4 * 1024 * KIB, 16 * KIB, 1024 * 1024 * KIB),
    sessionTtlMs: integer(env, "SESSION_TTL_HOURS", 7 * 24, 1, 24 * 365) * 3600 * SECOND,
    cookieSecure: boolean(env, "COOKIE_SECURE", false),
    credentialCacheMs: integer(env, "CREDENTIAL_CACHE_MS", 30 * SECOND, 0, DAY),
    identityUrl: url(env, "IDENTITY_URL", ["http:", "https:"]),
    identityCacheMs: integer(env, "IDENTITY_CACHE_MS", 30 * SECOND, 0, DAY),
    identityTimeoutMs: integer(env, "IDENTITY_TIMEOUT_MS", 5 * SECOND, 100, 120 * SECOND),
    ...bootstrapAdmin(env),
    adminSocket: adminSocketPath(env, dataDir),
    loginMaxFailures: integer(env, "LOGIN_MAX_FAILURES", 5, 1, 10_000),
    loginWindowMs: integer(env, "LOGIN_WINDOW_SECONDS", 15 * 60, 1, 86_400) * SECOND,
    allowedOrigins: origins(env, "ALLOWED_ORIGINS"),
    trustProxy: proxies(env, "TRUST_PROXY"),
    shutdownTimeoutMs: integer(env, "SHUTDOWN_TIMEOUT_MS", 10 * SECOND, 0, 600 * SECOND),
    metricsToken: metricsToken(env),
    metricsPort: env.METRICS_PORT ? integer(env, "METRICS_PORT", 0, 0, 65535) : undefined,
    streamFlushMs: integer(env, "STREAM_FLUSH_MS", 200, 10, 60 * SECOND),
    streamIdleMs: integer(env, "STREAM_IDLE_MS", 5 * 60 * SECOND, 100, DAY),
    streamMaxPerConnection: integer(env, "STREAM_MAX_PER_CONNECTION", 16, 1, 10_000),
    wsAppendRateLimitPerSecond: integer(env, "WS_APPEND_RATE_LIMIT", 1000, 1, 1_000_000),
    wsAppendRateLimitBurst: integer(env, "WS_APPEND_RATE_BURST", 2000, 1, 1_000_000),
    sendBatchLanes: integer(env, "SEND_BATCH_LANES", 1, 1, 64),
    sendBatchMax: integer(env, "SEND_BATCH_MAX", 256, 1, 10_000),
    webhooks: {
      allowPrivate: boolean(env, "WEBHOOK_ALLOW_PRIVATE", false),
      timeoutMs: integer(env, "WEBHOOK_TIMEOUT_MS", 10 * SECOND, 100, 10 * SECOND),
      maxAttempts: integer(env, "WEBHOOK_MAX_ATTEMPTS", 12, 1, 100),
      retryBaseMs: integer(env, "WEBHOOK_RETRY_BASE_MS", 5 * SECOND, 10, 3600 * SECOND),
      retryMaxMs: integer(env, "WEBHOOK_RETRY_MAX_MS", 3600 * SECOND, 10, DAY),
      disableAfterFailures: integer(env, "WEBHOOK_DISABLE_AFTER_FAILURES", 50, 1, 100_000),
      pollMs: integer(env, "WEBHOOK_POLL_MS", 1 * SECOND, 10, 600 * SECOND),
      concurrency: integer(env, "WEBHOOK_CONCURRENCY", 128, 1, 10_000),
    },
  };
}
