import { describe, expect, it } from "vitest";
import { errorAt, fieldErrors } from "./errors";

describe("fieldErrors", () => {
  it("reads one field of the API server's validation message", () => {
    const errors = fieldErrors(
      'DatabaseCluster.dbaas.io "shop" is invalid: spec.clusterSize: Invalid value: 0: spec.clusterSize in body should be greater than or equal to 1',
    );
    expect(errors).toEqual({
      "spec.clusterSize":
        "Invalid value: 0: spec.clusterSize in body should be greater than or equal to 1",
    });
  });

  it("reads every field of a list, commas inside messages included", () => {
    const errors = fieldErrors(
      'DatabaseCluster.dbaas.io "shop" is invalid: [spec.clusterSize: Invalid value: 2: must be 1, or 3 or more, spec.storage.size: Invalid value: "x": quantities must match]',
    );
    expect(Object.keys(errors)).toEqual(["spec.clusterSize", "spec.storage.size"]);
    expect(errors["spec.clusterSize"]).toBe("Invalid value: 2: must be 1, or 3 or more");
  });

  it("reads the REST API's own refusals and ignores messages without fields", () => {
    expect(
      fieldErrors('spec.engine.version: Unsupported value: "9.9": supported values: "17.2"'),
    ).toEqual({ "spec.engine.version": 'Unsupported value: "9.9": supported values: "17.2"' });
    expect(fieldErrors("user x cannot create databaseclusters.dbaas.io")).toEqual({});
  });

  it("finds a message under a field", () => {
    const errors = fieldErrors("spec.backup.schedules[0].schedule: Invalid value: \"x\": bad cron");
    expect(errorAt(errors, "spec.backup.schedules.schedule")).toContain("bad cron");
    expect(errorAt(errors, "spec.backup")).toContain("bad cron");
    expect(errorAt(errors, "spec.proxy")).toBeUndefined();
  });
});
