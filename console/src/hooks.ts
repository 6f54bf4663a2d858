// Data hooks: a list page that stays live through the API's watch stream.
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "./api/client";
import { watch, type WatchEvent } from "./api/watch";
import { deletedSince, fresher } from "./model/freshness";

interface Named {
  metadata?: { name?: string | null; namespace?: string | null; resourceVersion?: string | null } | null;
}

const nameOf = (o: Named) => o.metadata?.name ?? "";

/**
 * Items of `load` (one page), kept current by the watch of `watchPath`:
 * changed items are replaced in place, deleted ones removed, and the page is
 * loaded again when an item appears or the stream says RESYNC.
 */
export function useLiveList<T extends Named>(
  load: () => Promise<{ items: T[]; next?: string | null; remaining?: number | null }>,
  watchPath: string | undefined,
  token: string,
) {
  const [items, setItems] = useState<T[]>();
  const [next, setNext] = useState<string | null>();
  const [remaining, setRemaining] = useState<number | null>();
  const [error, setError] = useState<ApiError>();
  const [live, setLive] = useState<"connecting" | "live" | "offline">("connecting");
  const loadRef = useRef(load);
  loadRef.current = load;
  const reloadTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  // Only the newest load's answer is shown.
  const loads = useRef(0);
  // The newest state each object's events showed (deleted ones too), so a
  // list answer computed before an event does not put an older state back.
  const seen = useRef(new Map<string, { object: T; deleted: boolean }>());

  const reload = useCallback(async () => {
    const ticket = ++loads.current;
    try {
      const page = await loadRef.current();
      if (ticket !== loads.current) return;
      const current = page.items
        .filter((item) => {
          const known = seen.current.get(nameOf(item));
          return !(known?.deleted && deletedSince(item, known.object));
        })
        .map((item) => {
          const known = seen.current.get(nameOf(item));
          return known && !known.deleted ? fresher(item, known.object) : item;
        });
      setItems(current);
      setNext(page.next);
      setRemaining(page.remaining);
      setError(undefined);
    } catch (err) {
      if (ticket === loads.current) setError(err as ApiError);
    }
  }, []);

  const reloadSoon = useCallback(() => {
    clearTimeout(reloadTimer.current);
    reloadTimer.current = setTimeout(() => void reload(), 250);
  }, [reload]);

  useEffect(() => {
    void reload();
  }, [reload, load]);

  useEffect(() => {
    if (!watchPath) return;
    setLive("connecting");
    seen.current = new Map();
    const stop = watch<T>(
      watchPath,
      token,
      (event: WatchEvent<T>) => {
        setLive("live");
        const object = event.object;
        if (event.type === "RESYNC" || !object) {
          reloadSoon();
          return;
        }
        seen.current.set(nameOf(object), { object, deleted: event.type === "DELETED" });
        if (event.type === "DELETED") {
          setItems((current) => current?.filter((i) => nameOf(i) !== nameOf(object)));
          return;
        }
        setItems((current) => {
          if (current?.some((i) => nameOf(i) === nameOf(object))) {
            return current.map((i) => (nameOf(i) === nameOf(object) ? fresher(object, i) : i));
          }
          reloadSoon();
          return current;
        });
      },
      () => setLive("offline"),
    );
    return () => {
      stop();
      clearTimeout(reloadTimer.current);
    };
  }, [watchPath, token, reloadSoon]);

  return { items, next, remaining, error, live, reload };
}

/**
 * An action's last error: `attempt(action)` clears it, runs the action and
 * keeps what it threw (an ApiError), so a button shows the API's refusal.
 */
export function useAttempt(): [ApiError | undefined, (action: () => Promise<unknown>) => Promise<void>] {
  const [error, setError] = useState<ApiError>();
  const attempt = useCallback(async (action: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await action();
    } catch (err) {
      setError(err as ApiError);
    }
  }, []);
  return [error, attempt];
}
