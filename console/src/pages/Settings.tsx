import { useEffect, useState } from "react";
import { ok, okPage, type ApiError, type EngineVersions, type Schemas } from "../api/client";
import { useSession } from "../session";
import { ActionButton, ErrorNote, Loading } from "../components/ui";

type Named = { metadata?: { name?: string | null } | null };

export function Settings() {
  const { api, namespace, can } = useSession();
  const [engines, setEngines] = useState<EngineVersions[]>();
  const [lists, setLists] = useState<Record<string, Named[] | ApiError>>({});
  const [clusters, setClusters] = useState<Schemas["KubernetesCluster"][] | ApiError>();
  const [error, setError] = useState<ApiError>();
  const [approved, setApproved] = useState<string>();

  useEffect(() => {
    const path = { params: { path: { namespace } } };
    ok(api.GET("/v1/namespaces/{namespace}/engineversions", path)).then((l) => setEngines(l.items)).catch(setError);
    const listed = (key: string, pending: Promise<{ items: Named[] }>) =>
      pending.then((l) => setLists((s) => ({ ...s, [key]: l.items }))).catch((e: ApiError) => setLists((s) => ({ ...s, [key]: e })));
    listed("Backup storages", okPage(api.GET("/v1/namespaces/{namespace}/backupstorages", path)));
    listed("Monitoring configs", okPage(api.GET("/v1/namespaces/{namespace}/monitoringconfigs", path)));
    listed("Cluster templates", okPage(api.GET("/v1/namespaces/{namespace}/databaseclustertemplates", path)));
    listed("Backup schedule templates", okPage(api.GET("/v1/namespaces/{namespace}/backupscheduletemplates", path)));
    ok(api.GET("/v1/kubernetesclusters")).then((l) => setClusters(l.items)).catch((e: ApiError) => setClusters(e));
  }, [api, namespace]);

  const approve = async (engine: EngineVersions) => {
    setError(undefined);
    try {
      await ok(
        api.POST("/v1/namespaces/{namespace}/databaseengines/{name}/approve-upgrade", {
          params: { path: { namespace, name: engine.name } },
          body: { version: engine.upgradeAvailable ?? "" },
        }),
      );
      setApproved(engine.name);
    } catch (e) {
      setError(e as ApiError);
    }
  };

  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings of {namespace}</h1>
      <ErrorNote error={error} />
      <h2>Engines</h2>
      {!engines && <Loading what="engines" />}
      {engines && (
        <div className="table-wrap">
          <table>
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
                    {e.upgradeAvailable ? (
                      approved === e.name ? (
                        "Approved"
                      ) : (
                        <ActionButton allowed={can("databaseengines", "get")} onClick={() => void approve(e)}>
                          Approve {e.upgradeAvailable}
                        </ActionButton>
                      )
                    ) : (
                      "Up to date"
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {Object.entries(lists).map(([title, list]) => (
        <div key={title}>
          <h2>{title}</h2>
          {list instanceof Error ? (
            <ErrorNote error={list} />
          ) : list.length === 0 ? (
            <p className="hint">None in {namespace}.</p>
          ) : (
            <ul>{list.map((item) => <li key={item.metadata?.name}>{item.metadata?.name}</li>)}</ul>
          )}
        </div>
      ))}
      <h2>Registered Kubernetes clusters</h2>
      {clusters instanceof Error ? (
        <ErrorNote error={clusters} />
      ) : !clusters ? (
        <Loading what="registered clusters" />
      ) : clusters.length === 0 ? (
        <p className="hint">Only this cluster (local).</p>
      ) : (
        <ul>
          {clusters.map((c) => (
            <li key={c.name}>
              {c.name} <span className="mono">{c.server}</span> {c.reachable ? "reachable" : "unreachable"}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
