import { useEffect, useMemo, useState } from "react";
import { stringify } from "yaml";
import {
  ok,
  okPage,
  type ApiError,
  type DatabaseBackup,
  type DatabaseClusterTemplate,
  type EngineVersions,
  type Schemas,
} from "../api/client";
import { useSession } from "../session";
import { navigate } from "../router";
import { errorAt, type FieldErrors } from "../model/errors";
import {
  EMPTY_FORM,
  buildCluster,
  capacityProblems,
  locksOf,
  prefill,
  type WizardForm,
} from "../model/wizard";
import { Checkbox, ErrorNote, Field, Loading } from "../components/ui";

const STEPS = [
  "Engine",
  "Version",
  "Template",
  "Size",
  "Proxy and exposure",
  "Backups",
  "Monitoring",
  "Review",
] as const;

/** An RFC 3339 time as a datetime-local input's value, in local time. */
function toLocalInput(iso: string): string {
  const date = new Date(iso);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

/** The step that holds a field the API named. */
function stepOf(field: string): number {
  if (field.startsWith("spec.engine.version")) return 1;
  if (field.startsWith("metadata.annotations")) return 2;
  if (/^spec\.(clusterSize|resources|storage)/.test(field)) return 3;
  if (/^spec\.(proxy|expose)/.test(field)) return 4;
  if (field.startsWith("spec.backup")) return 5;
  if (field.startsWith("spec.monitoring")) return 6;
  if (field.startsWith("spec.dataSource")) return 0;
  return 0;
}

interface Choices {
  engines: EngineVersions[];
  templates: DatabaseClusterTemplate[];
  storages: string[];
  monitoring: string[];
  backups: DatabaseBackup[];
}

export function CreateWizard({ restoreFrom }: { restoreFrom?: string }) {
  const { api, namespace, can } = useSession();
  const [step, setStep] = useState(0);
  const [form, setForm] = useState<WizardForm>({ ...EMPTY_FORM, restoreFrom: restoreFrom ?? "" });
  const [choices, setChoices] = useState<Choices>();
  const [loadError, setLoadError] = useState<ApiError>();
  const [capacity, setCapacity] = useState<Schemas["AvailableResources"]>();
  const [capacityNote, setCapacityNote] = useState<string>();
  const [errors, setErrors] = useState<FieldErrors>({});
  const [submitError, setSubmitError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const path = { params: { path: { namespace } } };
    const names = (list: { items: { metadata?: { name?: string | null } | null }[] }) =>
      list.items.map((i) => i.metadata?.name ?? "");
    // Lists the caller may not read are offered empty, not failed.
    const orEmpty = <T,>(p: Promise<T>, empty: T) => p.catch(() => empty);
    Promise.all([
      ok(api.GET("/v1/namespaces/{namespace}/engineversions", path)),
      orEmpty(okPage(api.GET("/v1/namespaces/{namespace}/databaseclustertemplates", path)).then((l) => l.items), []),
      orEmpty(okPage(api.GET("/v1/namespaces/{namespace}/backupstorages", path)).then(names), []),
      orEmpty(okPage(api.GET("/v1/namespaces/{namespace}/monitoringconfigs", path)).then(names), []),
      orEmpty(okPage(api.GET("/v1/namespaces/{namespace}/databasebackups", path)).then((l) => l.items), []),
    ])
      .then(([engines, templates, storages, monitoring, backups]) => {
        setChoices({ engines: engines.items, templates, storages, monitoring, backups });
        const restored = backups.find((b) => b.metadata?.name === restoreFrom);
        const engine = engines.items[0];
        if (engine && !restored) {
          setForm((f) => ({ ...f, engine: engine.engineType, version: engine.default ?? "" }));
        }
      })
      .catch((err: ApiError) => setLoadError(err));
    ok(api.GET("/v1/kubernetesclusters/{cluster}/resources", { params: { path: { cluster: "local" } } }))
      .then(setCapacity)
      .catch((err: ApiError) => setCapacityNote(`Available resources cannot be checked: ${err.message}`));
  }, [api, namespace, restoreFrom]);

  const engine = choices?.engines.find((e) => e.engineType === form.engine);
  const templates = (choices?.templates ?? []).filter((t) => t.spec.engineType === form.engine);
  const template = templates.find((t) => t.metadata?.name === form.template);
  const locks = locksOf(template);
  const cluster = useMemo(() => buildCluster(form, template), [form, template]);
  const problems = capacity ? capacityProblems(form, capacity.available) : [];
  const set = (patch: Partial<WizardForm>) => setForm((f) => ({ ...f, ...patch }));
  const err = (field: string) => errorAt(errors, field);

  if (loadError) return <ErrorNote error={loadError} />;
  if (!choices) return <Loading what="engines and templates" />;
  if (choices.engines.length === 0) {
    return (
      <div className="empty">
        <h2>No database engines in {namespace}</h2>
        <p>The operator creates a DatabaseEngine for each engine operator it finds. Install one, then come back.</p>
      </div>
    );
  }

  const create = async () => {
    setBusy(true);
    setErrors({});
    setSubmitError(undefined);
    try {
      await ok(
        api.POST("/v1/namespaces/{namespace}/databaseclusters", {
          params: { path: { namespace } },
          body: cluster as never,
        }),
      );
      navigate({ page: "cluster", name: form.name.trim(), tab: "overview" });
    } catch (e) {
      const error = e as ApiError;
      setErrors(error.fields);
      setSubmitError(error);
      const fields = Object.keys(error.fields);
      if (fields.length > 0) setStep(Math.min(...fields.map(stepOf)));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="wizard-title" className="wizard">
      <h1 id="wizard-title">Create a database cluster</h1>
      {!can("databaseclusters", "create") && (
        <div className="note">You may not create database clusters in {namespace}; the API will refuse.</div>
      )}
      <ol className="stepper">
        {STEPS.map((title, index) => (
          <li key={title} aria-current={index === step ? "step" : undefined}>
            <button type="button" className="link" onClick={() => setStep(index)}>
              {index + 1}. {title}
            </button>
          </li>
        ))}
      </ol>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (step < STEPS.length - 1) setStep(step + 1);
          else void create();
        }}
      >
        <h2>{STEPS[step]}</h2>
        {step === 0 && (
          <>
            <Field label="Name" value={form.name} onChange={(name) => set({ name })} error={err("metadata.name")} required
              hint="A DNS label: lower-case letters, digits and '-'." />
            <Field
              label="Engine"
              value={form.engine}
              onChange={(engineType) => {
                const next = choices.engines.find((e) => e.engineType === engineType);
                set({ engine: engineType, version: next?.default ?? "", topology: "", template: "", proxyType: "" });
              }}
              error={err("spec.engine.type")}
              options={choices.engines.map((e) => ({
                value: e.engineType,
                label: `${e.engineType}${e.operatorStatus && e.operatorStatus !== "Installed" ? ` (operator ${e.operatorStatus})` : ""}`,
              }))}
            />
            {(engine?.capabilities?.topologies ?? []).length > 0 && (
              <Field
                label="Topology"
                value={form.topology}
                onChange={(topology) => set({ topology })}
                error={err("spec.engine.topology")}
                options={[
                  { value: "", label: `Default (${engine?.capabilities?.topologies[0]})` },
                  ...(engine?.capabilities?.topologies ?? []).map((t) => ({ value: t, label: t })),
                ]}
                hint="How the instances replicate; it cannot change after creation."
              />
            )}
            {form.restoreFrom && (
              <>
                <div className="note">
                  Restoring backup <strong>{form.restoreFrom}</strong> into the new cluster.
                </div>
                <Field
                  label="Point in time (optional, your local time)"
                  type="datetime-local"
                  value={form.restoreTo ? toLocalInput(form.restoreTo) : ""}
                  onChange={(local) => set({ restoreTo: local ? new Date(local).toISOString() : "" })}
                  error={err("spec.dataSource")}
                  hint="Empty restores the end of the backup. A point in time needs PITR on the source cluster."
                />
              </>
            )}
          </>
        )}
        {step === 1 && (
          <Field
            label="Version"
            value={form.version}
            onChange={(version) => set({ version })}
            error={err("spec.engine.version")}
            suggestions={(engine?.allowed ?? []).map((v) => ({ value: v, label: v === engine?.default ? `${v} (default)` : v }))}
            hint={`Allowed here: ${(engine?.allowed ?? []).join(", ") || "none listed"}${engine?.default ? `; default ${engine.default}` : ""}.`}
          />
        )}
        {step === 2 && (
          <>
            <Field
              label="Template"
              value={form.template}
              onChange={(name) => {
                const chosen = templates.find((t) => t.metadata?.name === name);
                setForm((f) => prefill({ ...f, template: name }, chosen));
              }}
              error={err("metadata.annotations")}
              options={[{ value: "", label: "No template" }, ...templates.map((t) => ({ value: t.metadata?.name ?? "", label: t.metadata?.name ?? "" }))]}
            />
            {template?.spec.description && <p className="hint">{template.spec.description}</p>}
            {templates.length === 0 && <p className="hint">No DatabaseClusterTemplate for {form.engine} in {namespace}.</p>}
          </>
        )}
        {step === 3 && (
          <>
            <Field label="Instances" type="number" value={form.clusterSize} onChange={(clusterSize) => set({ clusterSize })} error={err("spec.clusterSize")} />
            <Field label="CPU per instance" value={form.cpu} onChange={(cpu) => set({ cpu })} locked={locks.cpu ? form.template : undefined} error={err("spec.resources")} />
            <Field label="Memory per instance" value={form.memory} onChange={(memory) => set({ memory })} locked={locks.memory ? form.template : undefined} />
            <Field label="Storage per instance" value={form.storageSize} onChange={(storageSize) => set({ storageSize })} error={err("spec.storage.size") ?? err("spec.storage")} />
            <Field
              label="Storage class"
              value={form.storageClass}
              onChange={(storageClass) => set({ storageClass })}
              locked={locks.storageClass ? form.template : undefined}
              options={[
                { value: "", label: "The cluster's default" },
                ...(capacity?.storageClasses ?? []).map((c) => ({ value: c.name, label: `${c.name}${c.isDefault ? " (default)" : ""}` })),
                ...(form.storageClass && !capacity?.storageClasses.some((c) => c.name === form.storageClass) ? [{ value: form.storageClass, label: form.storageClass }] : []),
              ]}
            />
            {capacity && (
              <p className="hint">
                Available now: {(capacity.available.cpuMillis / 1000).toFixed(2)} CPU,{" "}
                {(capacity.available.memoryBytes / 1024 ** 3).toFixed(2)} GiB memory on {capacity.nodes.length} node(s).
              </p>
            )}
            {capacityNote && <p className="hint">{capacityNote}</p>}
            {problems.length > 0 && (
              <div className="note note-warn" role="alert">
                <p>This cluster may not fit:</p>
                <ul>{problems.map((p) => <li key={p}>{p}</li>)}</ul>
              </div>
            )}
          </>
        )}
        {step === 4 && (
          <>
            <Field
              label="Proxy"
              value={form.proxyType}
              onChange={(proxyType) => set({ proxyType })}
              error={err("spec.proxy")}
              options={[{ value: "", label: "None" }, ...(engine?.capabilities?.proxies ?? []).map((p) => ({ value: p, label: p }))]}
            />
            {form.proxyType && <Field label="Proxy instances" type="number" value={form.proxyReplicas} onChange={(proxyReplicas) => set({ proxyReplicas })} />}
            <Field
              label="Exposure"
              value={form.expose}
              onChange={(expose) => set({ expose: expose as WizardForm["expose"] })}
              error={err("spec.expose")}
              options={[
                { value: "internal", label: "Inside Kubernetes only" },
                { value: "external", label: "From outside (load balancer)" },
              ]}
            />
            {form.expose === "external" && (
              <Field label="Allowed source ranges" value={form.sourceRanges} onChange={(sourceRanges) => set({ sourceRanges })} placeholder="10.0.0.0/8, 192.168.1.0/24" hint="Everyone when empty." />
            )}
          </>
        )}
        {step === 5 && (
          <>
            <Checkbox label="Scheduled backups" checked={form.backupEnabled} onChange={(backupEnabled) => set({ backupEnabled, backupStorage: form.backupStorage || choices.storages[0] || "" })} />
            {form.backupEnabled && (
              <>
                <Field label="Backup storage" value={form.backupStorage} onChange={(backupStorage) => set({ backupStorage })} error={err("spec.backup")}
                  options={choices.storages.map((s) => ({ value: s, label: s }))} />
                {choices.storages.length === 0 && <p className="hint">No BackupStorage in {namespace}: add one under Settings.</p>}
                <Field label="Schedule (cron)" value={form.schedule} onChange={(schedule) => set({ schedule })} />
                <Field label="Backups kept" type="number" value={form.retentionCopies} onChange={(retentionCopies) => set({ retentionCopies })} />
                <Checkbox label="Point-in-time recovery" checked={form.pitr} onChange={(pitr) => set({ pitr })} />
              </>
            )}
          </>
        )}
        {step === 6 && (
          <Field
            label="Monitoring"
            value={form.monitoringConfig}
            onChange={(monitoringConfig) => set({ monitoringConfig })}
            error={err("spec.monitoring")}
            options={[{ value: "", label: "No monitoring" }, ...choices.monitoring.map((m) => ({ value: m, label: m }))]}
          />
        )}
        {step === 7 && (
          <>
            <p>This is the object that will be created in {namespace}:</p>
            <pre className="yaml" aria-label="The cluster as YAML">{stringify(cluster)}</pre>
            {submitError && Object.keys(submitError.fields).length === 0 && <ErrorNote error={submitError} />}
          </>
        )}
        {submitError && Object.keys(submitError.fields).length > 0 && step !== 7 && (
          <p className="error-text">The API refused the cluster; see the fields marked above.</p>
        )}
        <div className="actions">
          <button type="button" className="plain" disabled={step === 0} onClick={() => setStep(step - 1)}>
            Back
          </button>
          {step < STEPS.length - 1 ? (
            <button type="submit" className="primary">
              Next
            </button>
          ) : (
            <button type="submit" className="primary" disabled={busy || !form.name.trim()}>
              {busy ? "Creating…" : "Create"}
            </button>
          )}
        </div>
      </form>
    </section>
  );
}
