import { useCallback, useEffect, useState } from "react";
import {
  ok,
  type ApiError,
  type Credentials,
  type DatabaseBackup,
  type DatabaseCluster,
  type EngineVersions,
  type OpsRequest,
  type Schemas,
} from "../api/client";
import { watch } from "../api/watch";
import { useSession } from "../session";
import { href, navigate } from "../router";
import { useAttempt, useLiveList } from "../hooks";
import { age, connectionString, endpoint, type ConnectionScheme } from "../model/cluster";
import { fresher } from "../model/freshness";
import { errorAt, type FieldErrors } from "../model/errors";
import { ActionButton, Badge, CopyButton, Empty, ErrorNote, Field, Loading } from "../components/ui";

const TABS = [
  ["overview", "Overview"],
  ["connection", "Connection"],
  ["edit", "Edit"],
  ["operations", "Operations"],
  ["backups", "Backups"],
  ["events", "Events"],
] as const;

export function ClusterDetail({ name, tab }: { name: string; tab: string }) {
  const { api, namespace, token } = useSession();
  const [cluster, setCluster] = useState<DatabaseCluster>();
  const [error, setError] = useState<ApiError>();
  const [deleted, setDeleted] = useState(false);

  const load = useCallback(
    () =>
      ok(api.GET("/v1/namespaces/{namespace}/databaseclusters/{name}", { params: { path: { namespace, name } } }))
        .then((c) => {
          setCluster((known) => fresher(c, known));
          setError(undefined);
        })
        .catch((e: ApiError) => setError(e)),
    [api, namespace, name],
  );

  useEffect(() => {
    void load();
    return watch<DatabaseCluster>(
      `/v1/namespaces/${encodeURIComponent(namespace)}/databaseclusters`,
      token,
      (event) => {
        if (event.type === "RESYNC") void load();
        else if (event.object?.metadata?.name === name) {
          if (event.type === "DELETED") setDeleted(true);
          else {
            const object = event.object;
            setCluster((known) => fresher(object, known));
          }
        }
      },
    );
  }, [load, namespace, name, token]);

  if (error && !cluster) return <ErrorNote error={error} action={<a href={href({ page: "clusters" })}>Back to the list</a>} />;
  if (!cluster) return <Loading what={name} />;
  const status = cluster.status;
  return (
    <section aria-labelledby="cluster-title">
      <div className="page-head">
        <h1 id="cluster-title">{name}</h1>
        <Badge phase={deleted ? "Deleted" : status?.phase} />
        <span className="hint">
          {cluster.spec.engine.type} {status?.engineVersion ?? cluster.spec.engine.version} · {status?.ready ?? 0}/
          {cluster.spec.clusterSize ?? 1} ready
        </span>
      </div>
      {status?.message && <p className="status-message">{status.message}</p>}
      <nav className="tabs" aria-label="Cluster">
        {TABS.map(([id, title]) => (
          <a key={id} href={href({ page: "cluster", name, tab: id })} aria-current={tab === id ? "page" : undefined}>
            {title}
          </a>
        ))}
      </nav>
      {tab === "overview" && <Overview cluster={cluster} />}
      {tab === "connection" && <Connection cluster={cluster} />}
      {tab === "edit" && <Edit cluster={cluster} />}
      {tab === "operations" && <Operations cluster={cluster} />}
      {tab === "backups" && <Backups cluster={cluster} />}
      {tab === "events" && <Events cluster={cluster} />}
    </section>
  );
}

function Overview({ cluster }: { cluster: DatabaseCluster }) {
  const status = cluster.status;
  const conditions = status?.conditions ?? [];
  const now = Date.now();
  return (
    <div className="grid">
      <dl className="facts">
        <dt>Phase</dt>
        <dd>
          <Badge phase={status?.phase} />
        </dd>
        <dt>Engine</dt>
        <dd>
          {cluster.spec.engine.type} {status?.engineVersion ?? cluster.spec.engine.version ?? ""}
        </dd>
        <dt>Instances</dt>
        <dd>
          {status?.ready ?? 0} ready of {cluster.spec.clusterSize ?? 1}
        </dd>
        <dt>Primary endpoint</dt>
        <dd className="mono">{endpoint(cluster) || "not yet known"}</dd>
        <dt>Storage</dt>
        <dd>
          {String(cluster.spec.storage.size)} {cluster.spec.storage.class ? `(${cluster.spec.storage.class})` : ""}
        </dd>
        <dt>Engine resource</dt>
        <dd className="mono">{status?.engineRef ? `${status.engineRef.kind}/${status.engineRef.name}` : ""}</dd>
        <dt>Created</dt>
        <dd>{age(cluster.metadata?.creationTimestamp, now)} ago</dd>
      </dl>
      <div>
        <h2>Conditions</h2>
        {conditions.length === 0 ? (
          <p className="hint">No conditions yet: the operator has not reported on this cluster.</p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Type</th>
                  <th>Status</th>
                  <th>Reason</th>
                  <th className="wide">Message</th>
                  <th>Since</th>
                </tr>
              </thead>
              <tbody>
                {conditions.map((c) => (
                  <tr key={c.type}>
                    <td>{c.type}</td>
                    <td>{c.status}</td>
                    <td>{c.reason}</td>
                    <td className="wide">{c.message}</td>
                    <td>{age(c.lastTransitionTime, now)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {(status?.opsQueue ?? []).length > 0 && (
          <>
            <h2>Operation queue</h2>
            <ol>
              {status?.opsQueue?.map((op) => (
                <li key={op.name}>
                  {op.type} <span className="mono">{op.name}</span> <Badge phase={op.phase} />
                </li>
              ))}
            </ol>
          </>
        )}
      </div>
    </div>
  );
}

function Connection({ cluster }: { cluster: DatabaseCluster }) {
  const { api, namespace, can } = useSession();
  const [credentials, setCredentials] = useState<Credentials>();
  const [error, setError] = useState<ApiError>();
  const [reveal, setReveal] = useState(false);
  const name = cluster.metadata?.name ?? "";
  const host = cluster.status?.host ?? "";
  const port = cluster.status?.port;
  const engineType = cluster.spec.engine.type;
  // The engine's URL scheme comes from the server's declared capabilities;
  // until they arrive, the engine's name stands in for the scheme.
  const [engine, setEngine] = useState<ConnectionScheme>({ scheme: engineType, database: "" });
  useEffect(() => {
    ok(api.GET("/v1/namespaces/{namespace}/engineversions", { params: { path: { namespace } } }))
      .then((list) => {
        const connection = list.items.find((e) => e.engineType === engineType)?.capabilities?.connection;
        if (connection) setEngine(connection);
      })
      .catch(() => {});
  }, [api, namespace, engineType]);
  const fetchCredentials = async () => {
    setError(undefined);
    try {
      const answer = await ok(
        api.GET("/v1/namespaces/{namespace}/databaseclusters/{name}/credentials", { params: { path: { namespace, name } } }),
      );
      setCredentials(answer);
      return answer;
    } catch (e) {
      setError(e as ApiError);
      throw e;
    }
  };
  if (!host) {
    return <Empty title="No endpoint yet">The engine has not published where to connect; this fills in once it does.</Empty>;
  }
  const mayRead = can("secrets", "get");
  return (
    <div className="connection">
      <dl className="facts">
        <dt>Host</dt>
        <dd className="mono">
          {host} <CopyButton text={host} label="Copy host" />
        </dd>
        <dt>Port</dt>
        <dd className="mono">{port}</dd>
        <dt>Connection string</dt>
        <dd className="mono" data-testid="connection-string">
          {connectionString(engine, host, port, credentials?.username)}{" "}
          <CopyButton text={connectionString(engine, host, port, credentials?.username)} label="Copy connection string" />
        </dd>
      </dl>
      <h2>Credentials</h2>
      {!credentials && (
        <>
          <p className="hint">The password is read from the cluster's Secret only when you ask, and only if you may read it.</p>
          <ActionButton allowed={mayRead} onClick={() => void fetchCredentials().catch(() => {})}>
            Show credentials
          </ActionButton>
          {!mayRead && <p className="hint">You may not read Secrets in {namespace}.</p>}
        </>
      )}
      <ErrorNote error={error} />
      {credentials && (
        <dl className="facts">
          <dt>User</dt>
          <dd className="mono">
            {credentials.username ?? "(not in the Secret)"} {credentials.username && <CopyButton text={credentials.username} label="Copy user" />}
          </dd>
          <dt>Password</dt>
          <dd className="mono">
            <span data-testid="password">{reveal ? credentials.password : "••••••••"}</span>{" "}
            <button type="button" className="small" onClick={() => setReveal(!reveal)}>
              {reveal ? "Hide" : "Reveal"}
            </button>{" "}
            {credentials.password && <CopyButton text={credentials.password} label="Copy password" />}
          </dd>
          <dt>With password</dt>
          <dd className="mono">
            <CopyButton
              text={connectionString(engine, host, port, credentials.username, credentials.password)}
              label="Copy connection string with password"
            />
          </dd>
          <dt>Secret</dt>
          <dd className="mono">{credentials.secretName}</dd>
        </dl>
      )}
    </div>
  );
}

function Edit({ cluster }: { cluster: DatabaseCluster }) {
  const { api, namespace, can } = useSession();
  const name = cluster.metadata?.name ?? "";
  const [size, setSize] = useState(String(cluster.spec.clusterSize ?? 1));
  const [cpu, setCpu] = useState(String(cluster.spec.resources?.requests?.cpu ?? ""));
  const [memory, setMemory] = useState(String(cluster.spec.resources?.requests?.memory ?? ""));
  const [storage, setStorage] = useState(String(cluster.spec.storage.size));
  const [config, setConfig] = useState((cluster.spec.config ?? []).map((c) => `${c.name}=${c.value}`).join("\n"));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<ApiError>();
  const [saved, setSaved] = useState(false);
  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    setErrors({});
    setError(undefined);
    setSaved(false);
    const requests: Record<string, string> = {};
    if (cpu.trim()) requests.cpu = cpu.trim();
    if (memory.trim()) requests.memory = memory.trim();
    const patch = {
      spec: {
        clusterSize: Number.isFinite(Number(size)) ? Number(size) : size,
        storage: { size: storage.trim() },
        ...(Object.keys(requests).length ? { resources: { requests } } : {}),
        config: config
          .split("\n")
          .map((line) => line.trim())
          .filter(Boolean)
          .map((line) => {
            const at = line.indexOf("=");
            return at < 0 ? { name: line, value: "" } : { name: line.slice(0, at).trim(), value: line.slice(at + 1).trim() };
          }),
      },
    };
    try {
      await ok(
        api.PATCH("/v1/namespaces/{namespace}/databaseclusters/{name}", {
          params: { path: { namespace, name } },
          body: patch as never,
          headers: { "Content-Type": "application/merge-patch+json" },
        }),
      );
      setSaved(true);
    } catch (err) {
      setErrors((err as ApiError).fields);
      setError(err as ApiError);
    }
  };
  return (
    <form onSubmit={save} className="narrow">
      <Field label="Instances" type="number" value={size} onChange={setSize} error={errorAt(errors, "spec.clusterSize")} />
      <Field label="CPU per instance" value={cpu} onChange={setCpu} error={errorAt(errors, "spec.resources")} />
      <Field label="Memory per instance" value={memory} onChange={setMemory} />
      <Field label="Storage per instance" value={storage} onChange={setStorage} error={errorAt(errors, "spec.storage")} hint="Volumes can grow, never shrink." />
      <div className="field">
        <label htmlFor="config">Engine parameters (name=value per line)</label>
        <textarea id="config" rows={4} value={config} onChange={(e) => setConfig(e.target.value)} />
        {errorAt(errors, "spec.config") && <p className="error-text">{errorAt(errors, "spec.config")}</p>}
      </div>
      {error && Object.keys(error.fields).length === 0 && <ErrorNote error={error} />}
      {saved && <p role="status">Saved; the operator applies it now.</p>}
      <button type="submit" className="primary" disabled={!can("databaseclusters", "patch")}>
        Save
      </button>
    </form>
  );
}

/** A name for a new object of this cluster's: `<cluster>-<what>-<random>`. */
function generatedName(cluster: string, what: string): string {
  const suffix = Math.random().toString(36).slice(2, 7);
  return `${cluster}-${what}`.slice(0, 56).replace(/-+$/, "") + `-${suffix}`;
}

function Operations({ cluster }: { cluster: DatabaseCluster }) {
  const { api, namespace, token, can } = useSession();
  const name = cluster.metadata?.name ?? "";
  const [error, attempt] = useAttempt();
  const [engine, setEngine] = useState<EngineVersions>();
  const [version, setVersion] = useState("");
  const load = useCallback(
    () =>
      ok(api.GET("/v1/namespaces/{namespace}/databaseclusters/{name}/opsrequests", { params: { path: { namespace, name } } })).then(
        (page) => ({ items: page.items }),
      ),
    [api, namespace, name],
  );
  const { items, error: listError } = useLiveList<OpsRequest>(
    load,
    `/v1/namespaces/${encodeURIComponent(namespace)}/opsrequests`,
    token,
  );
  useEffect(() => {
    ok(api.GET("/v1/namespaces/{namespace}/engineversions", { params: { path: { namespace } } }))
      .then((list) => setEngine(list.items.find((e) => e.engineType === cluster.spec.engine.type)))
      .catch(() => {});
  }, [api, namespace, cluster.spec.engine.type]);
  const mayCreate = can("opsrequests", "create");
  const run = (type: string, detail: Record<string, unknown> = {}) =>
    attempt(() =>
      ok(
        api.POST("/v1/namespaces/{namespace}/opsrequests", {
          params: { path: { namespace } },
          body: {
            metadata: { name: generatedName(name, type.toLowerCase()) },
            spec: { clusterRef: { name }, type, ...detail },
          } as never,
        }),
      ),
    );
  const cancel = (op: string) =>
    attempt(() =>
      ok(
        api.PATCH("/v1/namespaces/{namespace}/opsrequests/{name}", {
          params: { path: { namespace, name: op } },
          body: { spec: { cancel: true } } as never,
          headers: { "Content-Type": "application/merge-patch+json" },
        }),
      ),
    );
  const current = cluster.status?.engineVersion ?? cluster.spec.engine.version ?? "";
  const upgrades = (engine?.allowed ?? []).filter((v) => v !== current);
  const ours = (items ?? []).filter((op) => op.spec.clusterRef.name === name);
  const now = Date.now();
  return (
    <div>
      <div className="actions wrap" role="group" aria-label="Day-2 operations">
        <ActionButton allowed={mayCreate} onClick={() => void run("Restart")}>
          Restart
        </ActionButton>
        <ActionButton allowed={mayCreate} onClick={() => void run("Switchover", { switchover: {} })}>
          Switchover
        </ActionButton>
        {cluster.spec.paused ? (
          <ActionButton allowed={mayCreate} onClick={() => void run("Start")}>
            Start
          </ActionButton>
        ) : (
          <ActionButton allowed={mayCreate} kind="danger" onClick={() => void run("Stop")}>
            Stop
          </ActionButton>
        )}
        <ActionButton
          allowed={mayCreate}
          onClick={() =>
            void run("Expose", { expose: { type: cluster.spec.expose?.type === "external" ? "internal" : "external" } })
          }
        >
          {cluster.spec.expose?.type === "external" ? "Make internal" : "Expose externally"}
        </ActionButton>
      </div>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (version) void run("Upgrade", { upgrade: { version } });
        }}
      >
        <Field
          label="Upgrade to"
          value={version}
          onChange={setVersion}
          options={[{ value: "", label: upgrades.length ? "Choose a version" : "No other allowed version" }, ...upgrades.map((v) => ({ value: v, label: v }))]}
        />
        <button type="submit" className="plain" disabled={!mayCreate || !version}>
          Upgrade
        </button>
      </form>
      <ErrorNote error={error} />
      <ErrorNote error={listError} />
      <h2>Operations</h2>
      {!items && <Loading what="operations" />}
      {items && ours.length === 0 && <p className="hint">No operations on this cluster yet.</p>}
      {ours.length > 0 && (
        <div className="table-wrap">
          <table aria-label="Operations">
            <thead>
              <tr>
                <th>Operation</th>
                <th>Name</th>
                <th>Phase</th>
                <th>Progress</th>
                <th className="wide">Message</th>
                <th>Age</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {ours.map((op) => {
                const phase = op.status?.phase ?? "Pending";
                const open = phase === "Pending" || phase === "Running";
                return (
                  <tr key={op.metadata?.name}>
                    <td>{op.spec.type}</td>
                    <td className="mono">{op.metadata?.name}</td>
                    <td>
                      <Badge phase={phase} />
                    </td>
                    <td>
                      {op.status?.progress ?? ""}
                      {op.status?.queuePosition ? ` (queue #${op.status.queuePosition})` : ""}
                    </td>
                    <td className="wide">{op.status?.message}</td>
                    <td>{age(op.metadata?.creationTimestamp, now)}</td>
                    <td>
                      {open && !op.spec.cancel && (
                        <ActionButton allowed={can("opsrequests", "patch")} onClick={() => void cancel(op.metadata?.name ?? "")}>
                          Cancel
                        </ActionButton>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function Backups({ cluster }: { cluster: DatabaseCluster }) {
  const { api, namespace, token, can } = useSession();
  const name = cluster.metadata?.name ?? "";
  const [error, attempt] = useAttempt();
  const load = useCallback(
    () =>
      ok(api.GET("/v1/namespaces/{namespace}/databaseclusters/{name}/backups", { params: { path: { namespace, name } } })).then(
        (page) => ({ items: page.items }),
      ),
    [api, namespace, name],
  );
  const { items, error: listError } = useLiveList<DatabaseBackup>(
    load,
    `/v1/namespaces/${encodeURIComponent(namespace)}/databasebackups`,
    token,
  );
  const backup = () =>
    attempt(() =>
      ok(
        api.POST("/v1/namespaces/{namespace}/databasebackups", {
          params: { path: { namespace } },
          body: { metadata: { name: generatedName(name, "backup") }, spec: { clusterName: name } } as never,
        }),
      ),
    );
  const ours = (items ?? []).filter((b) => b.spec.clusterName === name);
  const schedules = cluster.spec.backup?.schedules ?? [];
  const now = Date.now();
  return (
    <div>
      <div className="actions">
        <ActionButton kind="primary" allowed={can("databasebackups", "create")} onClick={() => void backup()}>
          Take a backup now
        </ActionButton>
      </div>
      <ErrorNote error={error} />
      <ErrorNote error={listError} />
      <h2>Schedules</h2>
      {schedules.length === 0 && !cluster.spec.backup?.schedule ? (
        <p className="hint">No scheduled backups. Add one under Edit or with the create wizard.</p>
      ) : (
        <ul>
          {cluster.spec.backup?.schedule && (
            <li>
              <span className="mono">{cluster.spec.backup.schedule}</span> to {cluster.spec.backup.storageName}
            </li>
          )}
          {schedules.map((s) => (
            <li key={s.name}>
              {s.name}: <span className="mono">{s.schedule}</span> to {s.storageName}
              {s.retentionCopies ? `, keeping ${s.retentionCopies}` : ""}
              {s.enabled ? "" : " (paused)"}
            </li>
          ))}
        </ul>
      )}
      {cluster.spec.backup?.pitr?.enabled && <p>Point-in-time recovery is on.</p>}
      <h2>Backups</h2>
      {!items && <Loading what="backups" />}
      {items && ours.length === 0 && <p className="hint">No backups of this cluster yet.</p>}
      {ours.length > 0 && (
        <div className="table-wrap">
          <table aria-label="Backups">
            <thead>
              <tr>
                <th>Name</th>
                <th>Phase</th>
                <th>Storage</th>
                <th>Completed</th>
                <th className="wide">Message</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {ours.map((b) => (
                <tr key={b.metadata?.name}>
                  <td className="mono">{b.metadata?.name}</td>
                  <td>
                    <Badge phase={b.status?.phase ?? "Pending"} />
                  </td>
                  <td>{b.status?.storageName ?? b.spec.storageName ?? ""}</td>
                  <td>{b.status?.completedAt ? `${age(b.status.completedAt, now)} ago` : ""}</td>
                  <td className="wide">{b.status?.message}</td>
                  <td>
                    {b.status?.phase === "Succeeded" && (
                      <ActionButton
                        allowed={can("databaseclusters", "create")}
                        onClick={() => navigate({ page: "create", restoreFrom: b.metadata?.name ?? "" })}
                      >
                        Restore into a new cluster
                      </ActionButton>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function Events({ cluster }: { cluster: DatabaseCluster }) {
  const { api, namespace } = useSession();
  const name = cluster.metadata?.name ?? "";
  const [events, setEvents] = useState<Schemas["ClusterEvent"][]>();
  const [error, setError] = useState<ApiError>();
  // Read again whenever the cluster changes: its changes are what the
  // operator records.
  const version = cluster.metadata?.resourceVersion;
  useEffect(() => {
    ok(api.GET("/v1/namespaces/{namespace}/databaseclusters/{name}/events", { params: { path: { namespace, name } } }))
      .then((list) => {
        setEvents(list.items);
        setError(undefined);
      })
      .catch((e: ApiError) => setError(e));
  }, [api, namespace, name, version]);
  const now = Date.now();
  if (error) return <ErrorNote error={error} />;
  if (!events) return <Loading what="events" />;
  if (events.length === 0) return <p className="hint">No events about this cluster (Kubernetes keeps them for an hour).</p>;
  return (
    <div className="table-wrap">
      <table aria-label="Events">
        <thead>
          <tr>
            <th>Type</th>
            <th>Reason</th>
            <th className="wide">Message</th>
            <th>Count</th>
            <th>Last seen</th>
            <th>From</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e, index) => (
            <tr key={`${e.reason}-${e.lastSeen}-${index}`}>
              <td>
                <span className={`badge badge-${e.type === "Warning" ? "bad" : "idle"}`}>{e.type}</span>
              </td>
              <td>{e.reason}</td>
              <td className="wide">{e.message}</td>
              <td>{e.count}</td>
              <td>{e.lastSeen ? `${age(e.lastSeen, now)} ago` : ""}</td>
              <td>{e.source}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
