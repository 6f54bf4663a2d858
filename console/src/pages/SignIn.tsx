import { useState } from "react";
import { signIn } from "../session";
import type { ApiError } from "../api/client";
import { ErrorNote } from "../components/ui";

/** Sign-in with a Kubernetes bearer token, as the Kubernetes Dashboard does. */
export function SignIn(props: { notice?: string; onSignedIn: (token: string) => void }) {
  const [token, setToken] = useState("");
  const [namespace, setNamespace] = useState(
    () => sessionStorage.getItem("dbaas.namespace") ?? "default",
  );
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await signIn(token.trim(), namespace.trim());
      props.onSignedIn(token.trim());
    } catch (err) {
      setError(err as ApiError);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to dbaas</h1>
        <p className="hint">
          Paste a Kubernetes bearer token, for example from{" "}
          <code>kubectl create token &lt;service-account&gt;</code>. It is kept in this tab only and
          sent with each request; the cluster's RBAC decides what you may do.
        </p>
        {props.notice && <div className="note">{props.notice}</div>}
        <div className="field">
          <label htmlFor="token">Bearer token</label>
          <textarea
            id="token"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            rows={4}
            required
            autoComplete="off"
            spellCheck={false}
          />
        </div>
        <div className="field">
          <label htmlFor="signin-namespace">Namespace</label>
          <input id="signin-namespace" value={namespace} onChange={(e) => setNamespace(e.target.value)} required />
        </div>
        <ErrorNote error={error} />
        <button type="submit" className="primary" disabled={busy || !token.trim()}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
