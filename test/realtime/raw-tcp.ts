/**
 * A WebSocket client written by hand over a TCP socket, for what a WebSocket API cannot do: stop reading
 * (to become a slow consumer) and later read what the server sent, down to its close frame.
 */
import type { Socket } from "bun";

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x81, 0x80 | length]) : Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff]);
  if (length >= 65536) throw new Error("frame too long for this client");
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([header, Buffer.from(mask), masked]);
}

/** Parses complete server frames (unmasked) off the front of `buffer`. */
function parseFrames(buffer: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = [];
  let offset = 0;
  for (;;) {
    if (buffer.length - offset < 2) break;
    const opcode = buffer[offset] & 0x0f;
    let length = buffer[offset + 1] & 0x7f;
    let headerLength = 2;
    if (length === 126) {
      if (buffer.length - offset < 4) break;
      length = buffer.readUInt16BE(offset + 2);
      headerLength = 4;
    } else if (length === 127) {
      if (buffer.length - offset < 10) break;
      length = Number(buffer.readBigUInt64BE(offset + 2));
      headerLength = 10;
    }
    if (buffer.length - offset < headerLength + length) break;
    frames.push({ opcode, payload: buffer.subarray(offset + headerLength, offset + headerLength + length) });
    offset += headerLength + length;
  }
  return { frames, rest: buffer.subarray(offset) };
}

export class RawTcpWebSocket {
  private pending = Buffer.alloc(0);
  private handshakeDone = false;
  private readonly texts: string[] = [];
  closeCode?: number;
  /** Pings received (this client never answers them). */
  pings = 0;
  bytesReceived = 0;
  ended = false;

  private constructor(private readonly socket: Socket<undefined>) {}

  static async connect(port: number, headers: Record<string, string>): Promise<RawTcpWebSocket> {
    let client!: RawTcpWebSocket;
    let upgraded!: () => void;
    let failed!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      upgraded = resolve;
      failed = reject;
    });
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_socket, data) => client.onData(Buffer.from(data), upgraded, failed),
        close: () => {
          client.ended = true;
        },
        error: (_socket, error) => failed(error),
      },
    });
    client = new RawTcpWebSocket(socket);
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
    const lines = [
      "GET /api/ws HTTP/1.1",
      `Host: 127.0.0.1:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      "",
      "",
    ];
    socket.write(lines.join("\r\n"));
    await ready;
    return client;
  }

  private onData(data: Buffer, upgraded: () => void, failed: (error: Error) => void): void {
    this.bytesReceived += data.length;
    this.pending = Buffer.concat([this.pending, data]);
    if (!this.handshakeDone) {
      const end = this.pending.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.pending.subarray(0, end).toString();
      if (!head.startsWith("HTTP/1.1 101")) return failed(new Error(`upgrade refused: ${head.split("\r\n")[0]}`));
      this.handshakeDone = true;
      this.pending = this.pending.subarray(end + 4);
      upgraded();
    }
    const { frames, rest } = parseFrames(this.pending);
    this.pending = Buffer.from(rest);
    for (const frame of frames) {
      if (frame.opcode === 0x1) this.texts.push(frame.payload.toString());
      if (frame.opcode === 0x8 && frame.payload.length >= 2) this.closeCode = frame.payload.readUInt16BE(0);
      if (frame.opcode === 0x9) this.pings++;
    }
  }

  sendText(text: string): void {
    this.socket.write(maskedTextFrame(text));
  }

  /** Stops reading: the kernel buffers fill, then the server's send buffer grows. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Text frames received so far, parsed. */
  frames(): any[] {
    return this.texts.map((t) => JSON.parse(t));
  }

  end(): void {
    this.socket.end();
  }
}
