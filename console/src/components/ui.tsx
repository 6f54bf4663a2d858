// Small shared pieces: badges, labelled fields with their API error,
// copy buttons, and the empty, loading and error states.
import { useId, useState } from "react";
import type { ReactNode } from "react";
import { phaseTone } from "../model/cluster";
import type { ApiError } from "../api/client";

export function Badge({ phase }: { phase: string | null | undefined }) {
  return (
    <span className={`badge badge-${phaseTone(phase)}`} data-phase={phase ?? "Unknown"}>
      {phase ?? "Unknown"}
    </span>
  );
}

/** A labelled input; `error` (the API's message) is shown under it. */
export function Field(props: {
  label: string;
  value: string;
  onChange?: (value: string) => void;
  error?: string;
  hint?: ReactNode;
  type?: string;
  locked?: string;
  placeholder?: string;
  options?: { value: string; label: string }[];
  /** Offered values of a free-text field (a datalist). */
  suggestions?: { value: string; label: string }[];
  required?: boolean;
}) {
  const id = useId();
  const errorId = `${id}-error`;
  const describedBy = props.error ? errorId : props.hint ? `${id}-hint` : undefined;
  const common = {
    id,
    value: props.value,
    disabled: Boolean(props.locked) || !props.onChange,
    "aria-invalid": props.error ? true : undefined,
    "aria-describedby": describedBy,
    required: props.required,
  };
  return (
    <div className={`field${props.error ? " field-error" : ""}`}>
      <label htmlFor={id}>{props.label}</label>
      {props.options ? (
        <select {...common} onChange={(e) => props.onChange?.(e.target.value)}>
          {props.options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      ) : (
        <input
          {...common}
          type={props.type ?? "text"}
          placeholder={props.placeholder}
          list={props.suggestions ? `${id}-list` : undefined}
          onChange={(e) => props.onChange?.(e.target.value)}
        />
      )}
      {props.suggestions && (
        <datalist id={`${id}-list`}>
          {props.suggestions.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </datalist>
      )}
      {props.locked && <p className="hint">Set by template {props.locked}</p>}
      {props.hint && !props.error && (
        <p className="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      )}
      {props.error && (
        <p className="error-text" id={errorId} role="alert">
          {props.error}
        </p>
      )}
    </div>
  );
}

export function Checkbox(props: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  const id = useId();
  return (
    <div className="field field-check">
      <input id={id} type="checkbox" checked={props.checked} onChange={(e) => props.onChange(e.target.checked)} />
      <label htmlFor={id}>{props.label}</label>
    </div>
  );
}

export function CopyButton({ text, label }: { text: string | (() => Promise<string>); label: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const copy = async () => {
    try {
      const value = typeof text === "string" ? text : await text();
      await navigator.clipboard.writeText(value);
      setState("copied");
    } catch {
      setState("failed");
    }
    setTimeout(() => setState("idle"), 2000);
  };
  return (
    <button type="button" className="small" onClick={copy} aria-label={label}>
      {state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : "Copy"}
    </button>
  );
}

export function ErrorNote({ error, action }: { error: ApiError | string | undefined; action?: ReactNode }) {
  if (!error) return null;
  const message = typeof error === "string" ? error : error.message;
  const advice =
    typeof error === "string"
      ? undefined
      : error.code === 403
        ? "Ask your cluster administrator for this permission."
        : error.code === 401
          ? "Your token was refused: sign in again."
          : error.code === 503
            ? "The server is busy or still starting: try again shortly."
            : error.code === 0
              ? "Check that dbaas-server is running and reachable."
              : undefined;
  return (
    <div className="note note-error" role="alert">
      <p>{message}</p>
      {advice && <p className="hint">{advice}</p>}
      {action}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <h3>{title}</h3>
      {children}
    </div>
  );
}

/** A button that is disabled, with the reason as its title, when not allowed. */
export function ActionButton(props: {
  allowed: boolean;
  onClick: () => void;
  children: ReactNode;
  kind?: "primary" | "danger" | "plain";
  busy?: boolean;
}) {
  return (
    <button
      type="button"
      className={props.kind ?? "plain"}
      disabled={!props.allowed || props.busy}
      title={props.allowed ? undefined : "You may not do this in this namespace"}
      onClick={props.onClick}
    >
      {props.children}
    </button>
  );
}
