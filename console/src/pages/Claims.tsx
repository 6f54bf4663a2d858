import { useCallback, useState } from "react";
import { ok, okPage, type ApiError, type DatabaseClaim } from "../api/client";
import { useSession } from "../session";
import { useLiveList } from "../hooks";
import { age } from "../model/cluster";
import { errorAt, type FieldErrors } from "../model/errors";
import { ActionButton, Badge, Empty, ErrorNote, Field, Loading } from "../components/ui";

/** The keys of a claim's Secret (the operator's default set, its DSN key and templates); never values. */
export function secretKeys(claim: DatabaseClaim): string[] {
  const keys = new Set(["username", "password", "host", "port", "database", "sslmode", "uri"]);
  keys.add(claim.spec.dsnName);
  Object.keys(claim.spec.secretTemplates ?? {}).forEach((k) => keys.add(k));
  return [...keys];
}

const readiness = (claim: DatabaseClaim) => {
  const ready = claim.status?.conditions?.find((c) => c.type === "Ready");
  if (!ready) return "Pending";
  return ready.status === "True" ? "Ready" : ready.reason || "NotReady";
};

export function Claims() {
  const { api, namespace, token, can } = useSession();
  const load = useCallback(
    () => okPage(api.GET("/v1/namespaces/{namespace}/databaseclaims", { params: { path: { namespace } } })).then((p) => ({ items: p.items, next: p.continue })),
    [api, namespace],
  );
  const { items, error } = useLiveList<DatabaseClaim>(load, `/v1/namespaces/${encodeURIComponent(namespace)}/databaseclaims`, token);
  const [creating, setCreating] = useState(false);
  const now = Date.now();
  return (
    <section aria-labelledby="claims-title">
      <div className="page-head">
        <h1 id="claims-title">Database claims</h1>
        <ActionButton kind="primary" allowed={can("databaseclaims", "create")} onClick={() => setCreating(!creating)}>
          {creating ? "Close" : "New claim"}
        </ActionButton>
      </div>
      <p className="hint">A claim gets a database and a user on a shared DatabaseServer; the connection lands in a Secret of this namespace.</p>
      {creating && <NewClaim onDone={() => setCreating(false)} />}
      <ErrorNote error={error} />
      {!items && !error && <Loading what="claims" />}
      {items && items.length === 0 && <Empty title={`No claims in ${namespace}`} />}
      {items && items.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>State</th>
                <th>Database</th>
                <th>Server</th>
                <th>Secret and its keys</th>
                <th>Last rotation</th>
              </tr>
            </thead>
            <tbody>
              {items.map((c) => (
                <tr key={c.metadata?.name}>
                  <td>{c.metadata?.name}</td>
                  <td>
                    <Badge phase={readiness(c)} />
                    {c.status?.error && <p className="hint">{c.status.error}</p>}
                  </td>
                  <td>
                    {c.spec.type} <span className="mono">{c.spec.dbNameOverride ?? c.spec.databaseName}</span>
                  </td>
                  <td>
                    {c.status?.server ?? ""}
                    {c.status?.matchedLabel ? <span className="hint"> (label {c.status.matchedLabel})</span> : ""}
                  </td>
                  <td>
                    <span className="mono">{c.spec.secretName}</span>
                    <p className="hint mono">{secretKeys(c).join(", ")}</p>
                  </td>
                  <td>{c.status?.lastRotation ? `${age(c.status.lastRotation, now)} ago` : "never"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function NewClaim({ onDone }: { onDone: () => void }) {
  const { api, namespace } = useSession();
  const [form, setForm] = useState({ name: "", type: "postgres", databaseName: "", username: "", secretName: "", dsnName: "DATABASE_URL", instanceLabel: "" });
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<ApiError>();
  const set = (patch: Partial<typeof form>) => setForm((f) => ({ ...f, ...patch }));
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setErrors({});
    setError(undefined);
    try {
      await ok(
        api.POST("/v1/namespaces/{namespace}/databaseclaims", {
          params: { path: { namespace } },
          body: {
            metadata: { name: form.name.trim() },
            spec: {
              type: form.type,
              databaseName: form.databaseName.trim(),
              username: form.username.trim(),
              secretName: form.secretName.trim() || `${form.name.trim()}-db`,
              dsnName: form.dsnName.trim(),
              ...(form.instanceLabel.trim() ? { instanceLabel: form.instanceLabel.trim() } : {}),
            },
          } as never,
        }),
      );
      onDone();
    } catch (err) {
      setErrors((err as ApiError).fields);
      setError(err as ApiError);
    }
  };
  return (
    <form onSubmit={submit} className="panel narrow" aria-label="New claim">
      <Field label="Claim name" value={form.name} onChange={(name) => set({ name })} error={errorAt(errors, "metadata.name")} required />
      <Field label="Engine" value={form.type} onChange={(type) => set({ type })} options={["postgres", "mysql", "mariadb"].map((v) => ({ value: v, label: v }))} />
      <Field label="Database name" value={form.databaseName} onChange={(databaseName) => set({ databaseName })} error={errorAt(errors, "spec.databaseName")} required />
      <Field label="User name" value={form.username} onChange={(username) => set({ username })} error={errorAt(errors, "spec.username")} required />
      <Field label="Secret name" value={form.secretName} onChange={(secretName) => set({ secretName })} placeholder={form.name ? `${form.name}-db` : ""} error={errorAt(errors, "spec.secretName")} />
      <Field label="DSN key" value={form.dsnName} onChange={(dsnName) => set({ dsnName })} error={errorAt(errors, "spec.dsnName")} />
      <Field label="Server instance label" value={form.instanceLabel} onChange={(instanceLabel) => set({ instanceLabel })} hint="Matched against DatabaseServers' dbaas.io/instance label." />
      {error && Object.keys(error.fields).length === 0 && <ErrorNote error={error} />}
      <button type="submit" className="primary">
        Create claim
      </button>
    </form>
  );
}
