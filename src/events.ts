/**
 * A minimal synchronous publish/subscribe used between layers of one process: the domain emits what
 * happened (after commit), the realtime hub and the cross-instance relay listen.
 */
export class Bus<T> {
  private readonly listeners = new Set<(event: T) => void>();

  on(listener: (event: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: T): void {
    for (const listener of this.listeners) listener(event);
  }
}
