/**
 * The few globals the SDK uses that every supported runtime has (browsers, Node ≥ 20, Bun, Deno), declared
 * here so that its declarations are built against no runtime's type library. Only what the SDK touches.
 */
declare function setTimeout(callback: () => void, ms?: number): unknown;
declare function clearTimeout(timer: unknown): void;
declare function setInterval(callback: () => void, ms?: number): unknown;
declare function clearInterval(timer: unknown): void;
declare function queueMicrotask(callback: () => void): void;
declare const crypto: { randomUUID(): string };
declare class URL {
  constructor(url: string);
  readonly searchParams: { set(name: string, value: string): void };
  toString(): string;
}
declare class URLSearchParams {
  set(name: string, value: string): void;
  toString(): string;
}
declare function fetch(input: string, init: RequestInit): Promise<Response>;
interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}
interface Response {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: { cancel(): Promise<void> } | null;
  text(): Promise<string>;
}
/** Aborting a run's work (RunHandle.signal): the WHATWG classes every supported runtime has. */
interface AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}
declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}
