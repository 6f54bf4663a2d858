// Data hooks: a list page that stays live through the API's watch stream.
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "./api/client";
import { watch, type WatchEvent } from "./api/watch";

interface Named {
  metadata?: { name?: string | null; namespace?: string | null } | null;
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

  const reload = useCallback(async () => {
    try {
      const page = await loadRef.current();
      setItems(page.items);
      setNext(page.next);
      setRemaining(page.remaining);
      setError(undefined);
    } catch (err) {
      setError(err as ApiError);
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
        if (event.type === "DELETED") {
          setItems((current) => current?.filter((i) => nameOf(i) !== nameOf(object)));
          return;
        }
        setItems((current) => {
          if (current?.some((i) => nameOf(i) === nameOf(object))) {
            return current.map((i) => (nameOf(i) === nameOf(object) ? object : i));
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
