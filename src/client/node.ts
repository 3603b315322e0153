/**
 * The package's entry on Node: the same SDK, with the `ws` package as its WebSocket. Node 20 has no global
 * WebSocket, and Node 22's cannot set headers, so credentials would otherwise travel in the URL.
 */
import WebSocket from "ws";
import { setDefaultWebSocket } from "./transport.js";

setDefaultWebSocket(WebSocket as unknown as import("./transport.js").WebSocketConstructor, "header");

export * from "./index.js";
