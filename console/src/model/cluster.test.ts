import { describe, expect, it } from "vitest";
import type { DatabaseCluster } from "../api/client";
import { age, connectionString, phaseTone, searchClusters, sortClusters } from "./cluster";

const cluster = (name: string, phase: string, created: string): DatabaseCluster => ({
  metadata: { name, creationTimestamp: created },
  spec: { engine: { type: "postgresql", version: "17.2" }, storage: { size: "1Gi" } },
  status: { phase, ready: 1, size: 1 },
} as DatabaseCluster);

describe("cluster helpers", () => {
  it("gives phases their tone", () => {
    expect(phaseTone("Ready")).toBe("ok");
    expect(phaseTone("Creating")).toBe("busy");
    expect(phaseTone("Error")).toBe("bad");
    expect(phaseTone(undefined)).toBe("idle");
  });

  it("words ages the way kubectl does", () => {
    const now = Date.parse("2026-01-02T00:00:00Z");
    expect(age("2026-01-01T23:59:30Z", now)).toBe("30s");
    expect(age("2026-01-01T23:30:00Z", now)).toBe("30m");
    expect(age("2026-01-01T00:00:00Z", now)).toBe("24h");
    expect(age("2025-12-20T00:00:00Z", now)).toBe("13d");
  });

  it("builds connection strings, with the password only when given", () => {
    expect(connectionString({ scheme: "postgresql", database: "postgres" }, "db-rw.team", 5432, "postgres")).toBe(
      "postgresql://postgres@db-rw.team:5432/postgres",
    );
    expect(connectionString({ scheme: "postgresql", database: "postgres" }, "h", 5432, "app", "p@ss/word")).toBe(
      "postgresql://app:p%40ss%2Fword@h:5432/postgres",
    );
    expect(connectionString({ scheme: "mysql", database: "" }, "h", 3306, null)).toBe("mysql://h:3306/");
  });

  it("sorts and searches a page", () => {
    const page = [
      cluster("b", "Ready", "2026-01-01T00:00:00Z"),
      cluster("a", "Error", "2026-01-02T00:00:00Z"),
    ];
    expect(sortClusters(page, "name", false).map((c) => c.metadata?.name)).toEqual(["a", "b"]);
    expect(sortClusters(page, "age", true).map((c) => c.metadata?.name)).toEqual(["a", "b"]);
    expect(searchClusters(page, "err").map((c) => c.metadata?.name)).toEqual(["a"]);
    expect(searchClusters(page, " ")).toHaveLength(2);
  });
});
