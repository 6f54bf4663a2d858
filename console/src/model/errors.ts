// Which form field an API error concerns. The API passes the API server's
// validation messages on as they are ("DatabaseCluster.dbaas.io "x" is
// invalid: [spec.clusterSize: Invalid value: 0: ..., spec.storage.size: ...]")
// and words its own refusals the same way ("spec.engine.version:
// Unsupported value: ..."), so the field paths can be read off the message.

/** Field path (e.g. `spec.clusterSize`) -> the message about it. */
export type FieldErrors = Record<string, string>;

const FIELD_AT_START = /^((?:spec|metadata)(?:\.[A-Za-z0-9_-]+|\[[^\]]*\])*): (.*)$/s;
const NEXT_FIELD = /, (?=(?:spec|metadata)(?:\.[A-Za-z0-9_-]+|\[[^\]]*\])*: )/;

export function fieldErrors(message: string): FieldErrors {
  const invalid = message.indexOf(" is invalid: ");
  let rest = invalid >= 0 ? message.slice(invalid + " is invalid: ".length) : message;
  if (rest.startsWith("[") && rest.endsWith("]")) rest = rest.slice(1, -1);
  const errors: FieldErrors = {};
  for (const part of rest.split(NEXT_FIELD)) {
    const match = FIELD_AT_START.exec(part.trim());
    if (!match) continue;
    const [, field, text] = match;
    const path = field.replace(/\[\d+\]/g, "");
    errors[path] = errors[path] ? `${errors[path]}; ${text}` : text;
  }
  return errors;
}

/** The message for `field` or for any field under it. */
export function errorAt(errors: FieldErrors, field: string): string | undefined {
  if (errors[field]) return errors[field];
  const nested = Object.keys(errors).find((key) => key.startsWith(`${field}.`));
  return nested ? errors[nested] : undefined;
}
