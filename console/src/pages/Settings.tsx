import { useCallback, useEffect, useState } from "react";
import { parse, stringify } from "yaml";
import { ok, okPage, type ApiError, type EngineVersions, type Schemas } from "../api/client";
import { useSession } from "../session";
import { useAttempt, useLiveList } from "../hooks";
import { ActionButton, ErrorNote, Field, Loading } from "../components/ui";

type Named = { metadata?: { name?: string | null; resourceVersion?: string | null } | null };

/** The namespaced kinds Settings lists and edits as YAML, with a starting point for a new one. */
const KINDS = [
  {
    plural: "backupstorages",
    title: "Backup storages",
    kind: "BackupStorage",
    skeleton: {
      metadata: { name: "s3-backups" },
      spec: { type: "s3", bucket: "my-bucket", region: "us-east-1", credentialsSecretName: "s3-credentials" },
    },
  },
  {
    plural: "monitoringconfigs",
    title: "Monitoring configs",
    kind: "MonitoringConfig",
    skeleton: { metadata: { name: "prometheus" }, spec: { type: "prometheus" } },
  },
  {
    plural: "databaseclustertemplates",
    title: "Cluster templates",
    kind: "DatabaseClusterTemplate",
    skeleton: {
      metadata: { name: "small" },
      spec: {
        engineType: "postgresql",
        description: "One small instance",
        resources: { requests: { cpu: "250m", memory: "512Mi" } },
        engineSpec: {},
      },
    },
  },
  {
    plural: "backupscheduletemplates",
    title: "Backup schedule templates",
    kind: "BackupScheduleTemplate",
    skeleton: {
      metadata: { name: "nightly" },
      spec: { schedules: [{ name: "nightly", enabled: true, schedule: "0 2 * * *", storageName: "s3-backups", retentionCopies: 7 }] },
    },
  },
] as const;

type Kind = (typeof KINDS)[number];
// The REST API serves these kinds alike; the typed client knows each path,
// so one of them stands for all in the calls below.
type CollectionPath = "/v1/namespaces/{namespace}/backupstorages";
type ItemPath = "/v1/namespaces/{namespace}/backupstorages/{name}";

export function Settings() {
  const { api, namespace, can } = useSession();
  const [engines, setEngines] = useState<EngineVersions[]>();
  const [error, setError] = useState<ApiError>();
  const [approved, setApproved] = useState<string>();
  const [approveError, attempt] = useAttempt();

  useEffect(() => {
    ok(api.GET("/v1/namespaces/{namespace}/engineversions", { params: { path: { namespace } } }))
      .then((l) => setEngines(l.items))
      .catch(setError);
  }, [api, namespace]);

  const approve = (engine: EngineVersions) =>
    attempt(async () => {
      await ok(
        api.POST("/v1/namespaces/{namespace}/databaseengines/{name}/approve-upgrade", {
          params: { path: { namespace, name: engine.name } },
          body: { version: engine.upgradeAvailable ?? "" },
        }),
      );
      setApproved(engine.name);
    });

  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings of {namespace}</h1>
      <h2>Engines</h2>
      <ErrorNote error={error ?? approveError} />
      {!engines && !error && <Loading what="engines" />}
      {engines && (
        <div className="table-wrap">
          <table aria-label="Engines">
            <thead>
              <tr>
                <th>Engine</th>
                <th>Operator</th>
                <th>Installed through</th>
                <th className="wide">Allowed versions</th>
                <th>Upgrade</th>
              </tr>
            </thead>
            <tbody>
              {engines.map((e) => (
                <tr key={e.name}>
                  <td>{e.engineType}</td>
                  <td>
                    {e.operatorStatus ?? "Unknown"} {e.operatorVersion ?? ""}
                  </td>
                  <td>{e.installSource ?? ""}</td>
                  <td className="wide">{e.allowed.map((v) => (v === e.default ? `${v} (default)` : v)).join(", ")}</td>
                  <td>
                    {!e.upgradeAvailable ? (
                      "Up to date"
                    ) : approved === e.name ? (
                      "Approved"
                    ) : (
                      <ActionButton allowed={can("databaseengines", "patch")} onClick={() => void approve(e)}>
                        Approve {e.upgradeAvailable}
                      </ActionButton>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {KINDS.map((kind) => (
        <YamlResources key={kind.plural} kind={kind} />
      ))}
      <RegisteredClusters />
    </section>
  );
}

/** A kind's objects in the namespace, each editable as YAML; the API's validation decides. */
function YamlResources({ kind }: { kind: Kind }) {
  const { api, namespace, token, can } = useSession();
  const [editing, setEditing] = useState<{ name?: string; text: string }>();
  const [error, attempt] = useAttempt();
  const collection = `/v1/namespaces/{namespace}/${kind.plural}` as CollectionPath;
  const item = `/v1/namespaces/{namespace}/${kind.plural}/{name}` as ItemPath;

  // Live, like every list: a write shows once the server's cache has it,
  // however long its watch takes.
  const load = useCallback(
    () =>
      okPage(api.GET(collection, { params: { path: { namespace } } })).then((page) => ({
        items: page.items as Named[],
      })),
    [api, namespace, collection],
  );
  const { items, error: listError, reload } = useLiveList<Named>(
    load,
    `/v1/namespaces/${encodeURIComponent(namespace)}/${kind.plural}`,
    token,
  );

  const save = () =>
    attempt(async () => {
      if (!editing) return;
      const object = parse(editing.text) as Named & Record<string, unknown>;
      const body = { apiVersion: "dbaas.io/v1", kind: kind.kind, ...object } as never;
      if (editing.name) {
        await ok(api.PUT(item, { params: { path: { namespace, name: editing.name } }, body }));
      } else {
        await ok(api.POST(collection, { params: { path: { namespace } }, body }));
      }
      setEditing(undefined);
      await reload();
    });
  const remove = (name: string) =>
    attempt(async () => {
      await ok(api.DELETE(item, { params: { path: { namespace, name } } }));
      await reload();
    });
  const edit = (object: Named) => {
    const { apiVersion: _a, kind: _k, status: _s, ...rest } = object as Record<string, unknown>;
    const meta = { ...(rest.metadata as Record<string, unknown>) };
    for (const key of ["managedFields", "uid", "creationTimestamp", "generation"]) delete meta[key];
    setEditing({ name: object.metadata?.name ?? undefined, text: stringify({ ...rest, metadata: meta }) });
  };

  return (
    <section aria-label={kind.title}>
      <div className="page-head">
        <h2>{kind.title}</h2>
        <ActionButton allowed={can(kind.plural, "create")} onClick={() => setEditing({ text: stringify(kind.skeleton) })}>
          New
        </ActionButton>
      </div>
      <ErrorNote error={listError} />
      {items && items.length === 0 && <p className="hint">None in {namespace}.</p>}
      {items && items.length > 0 && (
        <ul className="plain-list">
          {items.map((object) => (
            <li key={object.metadata?.name}>
              <span className="mono">{object.metadata?.name}</span>{" "}
              <ActionButton allowed={can(kind.plural, "update")} onClick={() => edit(object)}>
                Edit
              </ActionButton>{" "}
              <ActionButton allowed={can(kind.plural, "delete")} kind="danger" onClick={() => void remove(object.metadata?.name ?? "")}>
                Delete
              </ActionButton>
            </li>
          ))}
        </ul>
      )}
      {editing && (
        <form
          className="panel"
          aria-label={`${editing.name ? "Edit" : "New"} ${kind.kind}`}
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <div className="field wide-field">
            <label htmlFor={`${kind.plural}-yaml`}>
              {kind.kind} as YAML{editing.name ? ` (${editing.name})` : ""}
            </label>
            <textarea
              id={`${kind.plural}-yaml`}
              rows={12}
              spellCheck={false}
              value={editing.text}
              onChange={(e) => setEditing({ ...editing, text: e.target.value })}
            />
          </div>
          <ErrorNote error={error} />
          <div className="actions">
            <button type="submit" className="primary">
              Save
            </button>
            <button type="button" className="plain" onClick={() => setEditing(undefined)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {!editing && <ErrorNote error={error} />}
    </section>
  );
}

/** Kubernetes clusters registered with this server: register by kubeconfig upload, rename, unregister. */
function RegisteredClusters() {
  const { api } = useSession();
  const [clusters, setClusters] = useState<Schemas["KubernetesCluster"][]>();
  const [listError, setListError] = useState<ApiError>();
  const [name, setName] = useState("");
  const [kubeconfig, setKubeconfig] = useState<string>();
  const [renames, setRenames] = useState<Record<string, string>>({});
  const [error, attempt] = useAttempt();

  const load = useCallback(
    () =>
      ok(api.GET("/v1/kubernetesclusters"))
        .then((l) => {
          setClusters(l.items);
          setListError(undefined);
        })
        .catch(setListError),
    [api],
  );
  useEffect(() => {
    void load();
  }, [load]);

  const register = () =>
    attempt(async () => {
      await ok(api.POST("/v1/kubernetesclusters", { body: { name: name.trim(), kubeconfig: kubeconfig ?? "" } }));
      setName("");
      setKubeconfig(undefined);
      await load();
    });
  const rename = (cluster: string) =>
    attempt(async () => {
      await ok(
        api.PATCH("/v1/kubernetesclusters/{cluster}", {
          params: { path: { cluster } },
          body: { name: (renames[cluster] ?? "").trim() },
          headers: { "Content-Type": "application/merge-patch+json" },
        }),
      );
      await load();
    });
  const unregister = (cluster: string) =>
    attempt(async () => {
      await ok(api.DELETE("/v1/kubernetesclusters/{cluster}", { params: { path: { cluster } } }));
      await load();
    });

  return (
    <div>
      <h2>Registered Kubernetes clusters</h2>
      <p className="hint">
        Database clusters can also live on other Kubernetes clusters registered here by kubeconfig (inline credentials
        only). Registrations are Secrets in the server's namespace; the kubeconfig is never shown again.
      </p>
      <ErrorNote error={listError} />
      {clusters && clusters.length === 0 && <p className="hint">None: only this cluster (local).</p>}
      {clusters && clusters.length > 0 && (
        <div className="table-wrap">
          <table aria-label="Registered clusters">
            <thead>
              <tr>
                <th>Name</th>
                <th className="wide">API server</th>
                <th>State</th>
                <th>Rename to</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {clusters.map((c) => (
                <tr key={c.name}>
                  <td>{c.name}</td>
                  <td className="wide mono">{c.server}</td>
                  <td>
                    {c.reachable ? (c.synced ? "Reachable" : "Loading") : "Unreachable"}
                    {c.lastError && <p className="hint">{c.lastError}</p>}
                  </td>
                  <td>
                    <input
                      aria-label={`New name for ${c.name}`}
                      value={renames[c.name] ?? ""}
                      onChange={(e) => setRenames({ ...renames, [c.name]: e.target.value })}
                    />{" "}
                    <button type="button" className="small" disabled={!renames[c.name]?.trim()} onClick={() => void rename(c.name)}>
                      Rename
                    </button>
                  </td>
                  <td>
                    <button type="button" className="small danger" onClick={() => void unregister(c.name)}>
                      Unregister
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {!listError && (
      <form
        className="panel narrow"
        aria-label="Register a cluster"
        onSubmit={(e) => {
          e.preventDefault();
          void register();
        }}
      >
        <Field label="Cluster name" value={name} onChange={setName} />
        <div className="field">
          <label htmlFor="kubeconfig-file">Kubeconfig file</label>
          <input
            id="kubeconfig-file"
            type="file"
            onChange={async (e) => {
              const file = e.target.files?.[0];
              if (!file) return setKubeconfig(undefined);
              const bytes = new Uint8Array(await file.arrayBuffer());
              setKubeconfig(btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join("")));
            }}
          />
        </div>
        <ErrorNote error={error} />
        <button type="submit" className="primary" disabled={!name.trim() || !kubeconfig}>
          Register
        </button>
      </form>
      )}
    </div>
  );
}
