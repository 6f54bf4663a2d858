// Pure helpers for showing database clusters.
import type { DatabaseCluster } from "../api/client";

export type Tone = "ok" | "busy" | "bad" | "idle";

/** The badge colour of a phase. */
export function phaseTone(phase: string | null | undefined): Tone {
  switch (phase) {
    case "Ready":
      return "ok";
    case "Creating":
    case "Updating":
    case "Restoring":
    case "Pending":
    case "Deleting":
    case "Running":
    case "Cancelling":
      return "busy";
    case "Error":
    case "Failed":
      return "bad";
    default:
      return "idle";
  }
}

/** "45s", "12m", "5h", "3d": the age of `timestamp` at `now`. */
export function age(timestamp: string | null | undefined, now: number): string {
  if (!timestamp) return "";
  const seconds = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 120 * 60) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** `host:port` of the read-write endpoint, once the status has it. */
export function endpoint(cluster: DatabaseCluster): string {
  const status = cluster.status;
  if (!status?.host) return "";
  return status.port ? `${status.host}:${status.port}` : status.host;
}

/** How clients reach an engine: its URL scheme and the database a login lands in (the server's `capabilities.connection`). */
export interface ConnectionScheme {
  scheme: string;
  database: string;
}

/** A client URL for the engine; the password only when given. */
export function connectionString(
  connection: ConnectionScheme,
  host: string,
  port: number | null | undefined,
  username: string | null | undefined,
  password?: string | null,
): string {
  const { scheme, database } = connection;
  const user = username ? encodeURIComponent(username) : "";
  const secret = user && password ? `:${encodeURIComponent(password)}` : "";
  const at = user ? `${user}${secret}@` : "";
  const hostPort = port ? `${host}:${port}` : host;
  return `${scheme}://${at}${hostPort}/${database}`;
}

/** Sorting of the cluster table. */
export type SortKey = "name" | "age" | "phase" | "engine";

export function sortClusters(
  clusters: DatabaseCluster[],
  key: SortKey,
  descending: boolean,
): DatabaseCluster[] {
  const value = (c: DatabaseCluster): string => {
    switch (key) {
      case "name":
        return c.metadata?.name ?? "";
      case "age":
        // Older first when ascending.
        return c.metadata?.creationTimestamp ?? "";
      case "phase":
        return c.status?.phase ?? "";
      case "engine":
        return `${c.spec.engine.type} ${c.spec.engine.version ?? ""}`;
    }
  };
  const sorted = [...clusters].sort((a, b) => value(a).localeCompare(value(b)));
  return descending ? sorted.reverse() : sorted;
}

/** Clusters whose name, engine or phase contain `text`. */
export function searchClusters(clusters: DatabaseCluster[], text: string): DatabaseCluster[] {
  const needle = text.trim().toLowerCase();
  if (!needle) return clusters;
  return clusters.filter((c) =>
    [c.metadata?.name, c.spec.engine.type, c.spec.engine.version, c.status?.phase]
      .filter(Boolean)
      .some((field) => String(field).toLowerCase().includes(needle)),
  );
}
