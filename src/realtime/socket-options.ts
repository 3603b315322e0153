/**
 * Bun's WebSocket settings, derived from the configuration. They apply to every socket of the server.
 */
import type { Config } from "../config";

/**
 * Bun pings a socket that has been silent for half its idle timeout and closes it when nothing (no pong)
 * arrives by the full timeout. The timeout is whole seconds between 8 and 960: twice the heartbeat,
 * rounded into that range.
 */
export function idleTimeoutSeconds(config: Config): number {
  return Math.min(960, Math.max(8, Math.round((2 * config.heartbeatMs) / 1000)));
}

/** The heartbeat actually in effect (announced in session:ready): how often a silent socket is pinged. */
export function effectiveHeartbeatMs(config: Config): number {
  return (idleTimeoutSeconds(config) * 1000) / 2;
}

/**
 * Bun's own backpressure cap, a hard stop above the slow-consumer limit that the hub's sweep enforces
 * (with close code 4008): room for what one burst of publishes can add between two sweeps.
 */
export function hardBackpressureLimit(config: Config): number {
  return 4 * config.wsBackpressureBytes + 2 * config.maxFrameBytes;
}

/** The subset of Bun's WebSocketHandler settings this server sets. */
export interface SocketSettings {
  maxPayloadLength: number;
  idleTimeout: number;
  sendPings: boolean;
  backpressureLimit: number;
  closeOnBackpressureLimit: boolean;
  perMessageDeflate: boolean;
  publishToSelf: boolean;
}

export function realtimeSocketOptions(config: Config): SocketSettings {
  return {
    // A larger frame closes the connection with 1009.
    maxPayloadLength: config.maxFrameBytes,
    idleTimeout: idleTimeoutSeconds(config),
    sendPings: true,
    backpressureLimit: hardBackpressureLimit(config),
    closeOnBackpressureLimit: true,
    perMessageDeflate: false,
    publishToSelf: false,
  };
}
