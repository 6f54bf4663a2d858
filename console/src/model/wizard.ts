// The create wizard's form, and the DatabaseCluster it becomes (pure, so the
// review step shows exactly what is sent).
import type { DatabaseCluster, DatabaseClusterTemplate, Schemas } from "../api/client";

export interface WizardForm {
  name: string;
  engine: string;
  version: string;
  /** `spec.engine.topology`, for engines that offer a choice; empty for the default. */
  topology: string;
  template: string;
  clusterSize: string;
  cpu: string;
  memory: string;
  storageSize: string;
  storageClass: string;
  proxyType: string;
  proxyReplicas: string;
  expose: "internal" | "external";
  sourceRanges: string;
  backupEnabled: boolean;
  backupStorage: string;
  schedule: string;
  retentionCopies: string;
  pitr: boolean;
  monitoringConfig: string;
  /** Restore a DatabaseBackup of this namespace into the new cluster. */
  restoreFrom: string;
  /** With restoreFrom: a point in time (RFC 3339) instead of the backup's end. */
  restoreTo: string;
}

export const EMPTY_FORM: WizardForm = {
  name: "",
  engine: "postgresql",
  version: "",
  topology: "",
  template: "",
  clusterSize: "1",
  cpu: "500m",
  memory: "512Mi",
  storageSize: "1Gi",
  storageClass: "",
  proxyType: "",
  proxyReplicas: "",
  expose: "internal",
  sourceRanges: "",
  backupEnabled: false,
  backupStorage: "",
  schedule: "0 2 * * *",
  retentionCopies: "7",
  pitr: false,
  monitoringConfig: "",
  restoreFrom: "",
  restoreTo: "",
};

/** The fields a template sets: prefilled from it and locked. */
export interface Locks {
  cpu: boolean;
  memory: boolean;
  storageClass: boolean;
}

export function locksOf(template: DatabaseClusterTemplate | undefined): Locks {
  const requests = template?.spec.resources?.requests ?? {};
  return {
    cpu: Boolean(requests.cpu),
    memory: Boolean(requests.memory),
    storageClass: Boolean(template?.spec.storageClass),
  };
}

/** `form` with the template's values in the fields it sets. */
export function prefill(form: WizardForm, template: DatabaseClusterTemplate | undefined): WizardForm {
  if (!template) return form;
  const requests = template.spec.resources?.requests ?? {};
  return {
    ...form,
    cpu: requests.cpu !== undefined ? String(requests.cpu) : form.cpu,
    memory: requests.memory !== undefined ? String(requests.memory) : form.memory,
    storageClass: template.spec.storageClass ?? form.storageClass,
  };
}

/** A number field as the API should judge it: a number when it is one. */
function count(text: string): number | string {
  const value = Number(text);
  return text.trim() !== "" && Number.isFinite(value) ? value : text;
}

/**
 * The DatabaseCluster the form describes. Fields a template sets are left
 * out, so the template (applied by the operator) decides them.
 */
export function buildCluster(
  form: WizardForm,
  template: DatabaseClusterTemplate | undefined,
): DatabaseCluster {
  const locks = locksOf(template);
  const requests: Record<string, string> = {};
  if (!locks.cpu && form.cpu.trim()) requests.cpu = form.cpu.trim();
  if (!locks.memory && form.memory.trim()) requests.memory = form.memory.trim();
  const spec: Record<string, unknown> = {
    engine: {
      type: form.engine,
      ...(form.version ? { version: form.version } : {}),
      ...(form.topology ? { topology: form.topology } : {}),
    },
    clusterSize: count(form.clusterSize),
    storage: {
      size: form.storageSize.trim(),
      ...(!locks.storageClass && form.storageClass ? { class: form.storageClass } : {}),
    },
  };
  if (Object.keys(requests).length > 0) spec.resources = { requests };
  if (form.proxyType && form.proxyType !== "none") {
    spec.proxy = {
      type: form.proxyType,
      ...(form.proxyReplicas.trim() ? { replicas: count(form.proxyReplicas) } : {}),
    };
  }
  if (form.expose === "external") {
    const ranges = form.sourceRanges
      .split(/[\s,]+/)
      .map((r) => r.trim())
      .filter(Boolean);
    spec.expose = { type: "external", ...(ranges.length ? { ipSourceRanges: ranges } : {}) };
  }
  if (form.backupEnabled) {
    spec.backup = {
      enabled: true,
      schedules: [
        {
          name: "daily",
          enabled: true,
          schedule: form.schedule.trim(),
          storageName: form.backupStorage,
          ...(form.retentionCopies.trim() ? { retentionCopies: count(form.retentionCopies) } : {}),
        },
      ],
      ...(form.pitr ? { pitr: { enabled: true, storageName: form.backupStorage } } : {}),
    };
  }
  if (form.monitoringConfig) spec.monitoring = { monitoringConfigName: form.monitoringConfig };
  if (form.restoreFrom) {
    spec.dataSource = {
      backupName: form.restoreFrom,
      ...(form.restoreTo ? { pitr: { type: "date", date: form.restoreTo } } : {}),
    };
  }
  return {
    apiVersion: "dbaas.io/v1",
    kind: "DatabaseCluster",
    metadata: {
      name: form.name.trim(),
      ...(template ? { annotations: { "dbaas.io/template-name": template.metadata?.name ?? "" } } : {}),
    },
    spec: spec as DatabaseCluster["spec"],
  };
}

const SUFFIXES: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** A Kubernetes quantity in base units (cores for CPU), or undefined. */
export function quantity(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(text.trim());
  if (!match) return undefined;
  const [, number, suffix = ""] = match;
  if (suffix === "m") return Number(number) / 1000;
  return Number(number) * SUFFIXES[suffix];
}

/**
 * Why the cluster would not fit what the Kubernetes cluster has available,
 * or an empty list. Unknown sizes are not judged (the API will).
 */
export function capacityProblems(form: WizardForm, available: Schemas["Amounts"]): string[] {
  const size = Number(form.clusterSize);
  if (!Number.isFinite(size) || size < 1) return [];
  const problems: string[] = [];
  const cpu = quantity(form.cpu);
  if (cpu !== undefined && cpu * size * 1000 > available.cpuMillis) {
    problems.push(
      `${size} × ${form.cpu} CPU is ${round(cpu * size)} cores; ${round(available.cpuMillis / 1000)} are available`,
    );
  }
  const memory = quantity(form.memory);
  if (memory !== undefined && memory * size > available.memoryBytes) {
    problems.push(
      `${size} × ${form.memory} memory is ${gib(memory * size)}; ${gib(available.memoryBytes)} is available`,
    );
  }
  return problems;
}

const round = (n: number) => Math.round(n * 100) / 100;
const gib = (bytes: number) => `${round(bytes / 1024 ** 3)} GiB`;
