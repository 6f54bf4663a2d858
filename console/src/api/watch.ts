// Live changes from the API's watch streams (`?watch=true`, server-sent
// events). EventSource cannot send an Authorization header, so the stream is
// read with fetch. The server ends each stream after its watch lifetime;
// this reconnects, and a RESYNC (always the first event) means: list again.
// A stream that ends quickly is retried after a pause, never in a loop; a
// refused token (401) ends the watch and signs out.
import { announceUnauthorized } from "./client";

/** A stream shorter than this is followed by a pause before reconnecting. */
const SHORT_STREAM_MS = 5_000;

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "RESYNC";

export interface WatchEvent<T> {
  type: WatchEventType;
  object?: T;
}

/** Splits `buffer` into complete events and the incomplete rest. */
export function parseEvents<T>(buffer: string): { events: WatchEvent<T>[]; rest: string } {
  const events: WatchEvent<T>[] = [];
  const blocks = buffer.replace(/\r\n/g, "\n").split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let type: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue; // keep-alive comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      if (field === "data") data.push(value);
    }
    if (!type) continue;
    const text = data.join("\n");
    const object = type === "RESYNC" || text === "" ? undefined : (JSON.parse(text) as T);
    events.push({ type: type as WatchEventType, object });
  }
  return { events, rest };
}

/**
 * Watches `path` (a list URL of the API) as `token` until the returned
 * function is called. `onEvent` gets every change; `onError` a failure
 * (the watch retries after a pause).
 */
export function watch<T>(
  path: string,
  token: string,
  onEvent: (event: WatchEvent<T>) => void,
  onError: (message: string) => void = () => {},
): () => void {
  const abort = new AbortController();
  const separator = path.includes("?") ? "&" : "?";
  const run = async () => {
    while (!abort.signal.aborted) {
      const started = Date.now();
      try {
        const response = await fetch(`${path}${separator}watch=true`, {
          headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
          signal: abort.signal,
        });
        if (response.status === 401) {
          onError("your token was refused");
          announceUnauthorized();
          return;
        }
        if (!response.ok || !response.body) {
          const body = await response.json().catch(() => ({ message: response.statusText }));
          onError(body.message ?? `watch failed with ${response.status}`);
          await pause(response.status === 403 ? 30_000 : 5_000, abort.signal);
          continue;
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parsed = parseEvents<T>(buffer + value);
          buffer = parsed.rest;
          parsed.events.forEach(onEvent);
        }
        if (Date.now() - started < SHORT_STREAM_MS) await pause(2_000, abort.signal);
      } catch (error) {
        if (abort.signal.aborted) return;
        onError(`live updates interrupted (${String(error)}); reconnecting`);
        await pause(2_000, abort.signal);
      }
    }
  };
  void run();
  return () => abort.abort();
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
