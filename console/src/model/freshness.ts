// Which of two states of one object is newer. A list answer can be computed
// before a change and arrive after that change's watch event; the page must
// keep the event's state. Kubernetes resourceVersions are etcd revisions:
// decimal numbers that grow with every write.

interface Versioned {
  metadata?: { resourceVersion?: string | null } | null;
}

function revision(object: Versioned | undefined): bigint | undefined {
  const version = object?.metadata?.resourceVersion;
  return version && /^\d+$/.test(version) ? BigInt(version) : undefined;
}

/** `candidate` unless `known` is a strictly newer state of the same object. */
export function fresher<T extends Versioned>(candidate: T, known: T | undefined): T {
  const a = revision(candidate);
  const b = revision(known);
  if (known === undefined || a === undefined || b === undefined) return candidate;
  return b > a ? known : candidate;
}

/** Whether a deletion seen at `deleted` is newer than `object`. */
export function deletedSince(object: Versioned, deleted: Versioned): boolean {
  const a = revision(object);
  const b = revision(deleted);
  return a !== undefined && b !== undefined && b >= a;
}
