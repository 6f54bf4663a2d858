import { describe, expect, it } from "vitest";
import type { DatabaseClusterTemplate } from "../api/client";
import { EMPTY_FORM, buildCluster, capacityProblems, locksOf, prefill, quantity } from "./wizard";

const template = {
  metadata: { name: "small" },
  spec: {
    engineType: "postgresql",
    resources: { requests: { cpu: "250m", memory: "256Mi" } },
    storageClass: "fast",
    engineSpec: {},
  },
} as unknown as DatabaseClusterTemplate;

describe("the wizard's cluster", () => {
  it("carries a chosen topology, and leaves it out for the default", () => {
    const galera = buildCluster({ ...EMPTY_FORM, name: "shop", engine: "mariadb", topology: "galera" }, undefined);
    expect(galera.spec.engine).toEqual({ type: "mariadb", topology: "galera" });
    const plain = buildCluster({ ...EMPTY_FORM, name: "shop", engine: "mariadb" }, undefined);
    expect(plain.spec.engine).toEqual({ type: "mariadb" });
  });

  it("is the form, with numbers as numbers", () => {
    const cluster = buildCluster({ ...EMPTY_FORM, name: " shop ", version: "17.2", clusterSize: "3" }, undefined);
    expect(cluster).toEqual({
      apiVersion: "dbaas.io/v1",
      kind: "DatabaseCluster",
      metadata: { name: "shop" },
      spec: {
        engine: { type: "postgresql", version: "17.2" },
        clusterSize: 3,
        storage: { size: "1Gi" },
        resources: { requests: { cpu: "500m", memory: "512Mi" } },
      },
    });
  });

  it("leaves what a template sets to the template, and names it", () => {
    const form = prefill({ ...EMPTY_FORM, name: "shop" }, template);
    expect(form.cpu).toBe("250m");
    expect(locksOf(template)).toEqual({ cpu: true, memory: true, storageClass: true });
    const cluster = buildCluster(form, template);
    expect(cluster.metadata?.annotations).toEqual({ "dbaas.io/template-name": "small" });
    expect(cluster.spec.resources).toBeUndefined();
    expect(cluster.spec.storage).toEqual({ size: "1Gi" });
  });

  it("passes what is not a number on, for the API to refuse at the field", () => {
    const cluster = buildCluster({ ...EMPTY_FORM, name: "x", clusterSize: "0" }, undefined);
    expect(cluster.spec.clusterSize).toBe(0);
    const odd = buildCluster({ ...EMPTY_FORM, name: "x", clusterSize: "two" }, undefined);
    expect(odd.spec.clusterSize).toBe("two");
  });

  it("adds proxy, exposure, backups and monitoring when asked", () => {
    const cluster = buildCluster(
      {
        ...EMPTY_FORM,
        name: "x",
        proxyType: "pgbouncer",
        proxyReplicas: "2",
        expose: "external",
        sourceRanges: "10.0.0.0/8, 192.168.0.0/16",
        backupEnabled: true,
        backupStorage: "s3",
        pitr: true,
        monitoringConfig: "prom",
      },
      undefined,
    );
    expect(cluster.spec.proxy).toEqual({ type: "pgbouncer", replicas: 2 });
    expect(cluster.spec.expose).toEqual({ type: "external", ipSourceRanges: ["10.0.0.0/8", "192.168.0.0/16"] });
    expect(cluster.spec.backup?.schedules?.[0]).toMatchObject({ schedule: "0 2 * * *", storageName: "s3", retentionCopies: 7 });
    expect(cluster.spec.backup?.pitr).toEqual({ enabled: true, storageName: "s3" });
    expect(cluster.spec.monitoring).toEqual({ monitoringConfigName: "prom" });
  });

  it("restores a backup, to a point in time when given", () => {
    const cluster = buildCluster(
      { ...EMPTY_FORM, name: "x", restoreFrom: "nightly", restoreTo: "2026-12-01T10:00:00Z" },
      undefined,
    );
    expect(cluster.spec.dataSource).toEqual({
      backupName: "nightly",
      pitr: { type: "date", date: "2026-12-01T10:00:00Z" },
    });
  });
});

describe("capacity", () => {
  it("reads quantities", () => {
    expect(quantity("500m")).toBe(0.5);
    expect(quantity("2")).toBe(2);
    expect(quantity("1Gi")).toBe(1024 ** 3);
    expect(quantity("bogus")).toBeUndefined();
  });

  it("names what does not fit", () => {
    const available = { cpuMillis: 1000, memoryBytes: 1024 ** 3, ephemeralStorageBytes: 0 };
    expect(capacityProblems({ ...EMPTY_FORM, clusterSize: "1" }, available)).toEqual([]);
    const problems = capacityProblems({ ...EMPTY_FORM, clusterSize: "3", memory: "512Mi" }, available);
    expect(problems).toEqual([
      "3 × 500m CPU is 1.5 cores; 1 are available",
      "3 × 512Mi memory is 1.5 GiB; 1 GiB is available",
    ]);
  });
});
