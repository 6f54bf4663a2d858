//! `cluster edit` in an editor, like `kubectl edit`: the object as YAML in
//! a file, the user's editor on it, and the difference written back as a
//! JSON merge patch conditioned on the resourceVersion that was read.

use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::CliError;

/// Put on top of the file; YAML comments, so they never reach the patch.
const HEADER: &str = "\
# Edit the DatabaseCluster below and save to apply; lines starting with '#'
# are ignored. Saved only if nobody changed the cluster since it was read.
# An unchanged file changes nothing; status is not written back.
";

/// `$EDITOR`, else `vi`.
pub fn editor_command() -> String {
    std::env::var("EDITOR")
        .ok()
        .filter(|editor| !editor.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

/// The object as the user sees it: without managedFields, which are noise
/// nobody edits.
pub fn editable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    object
}

/// The text of the file the editor opens.
pub fn document(object: &Value) -> Result<String, CliError> {
    let yaml = serde_saphyr::to_string(object).map_err(|e| CliError::Output(e.to_string()))?;
    Ok(format!("{HEADER}{yaml}"))
}

/// Runs the editor on `path` and waits for it. Through `sh -c` so EDITOR
/// may carry arguments (`code --wait`, `sed -i s/a/b/`).
pub fn run_editor(editor: &str, path: &Path) -> Result<(), CliError> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("dbaasctl-edit")
        .arg(path)
        .status()
        .map_err(|e| CliError::Editor {
            editor: editor.to_owned(),
            detail: e.to_string(),
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Editor {
            editor: editor.to_owned(),
            detail: format!("it exited with {status}; nothing was changed"),
        })
    }
}

/// Writes `text` to a new temporary `.yaml` file.
pub fn temp_file(text: &str) -> Result<tempfile::NamedTempFile, CliError> {
    let mut file = tempfile::Builder::new()
        .prefix("dbaasctl-edit-")
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| CliError::Output(format!("creating a temporary file: {e}")))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| CliError::Output(format!("writing {}: {e}", file.path().display())))?;
    Ok(file)
}

/// The merge patch that turns `original` into `edited` (status left out),
/// with the read resourceVersion as its precondition; None when the edit
/// changes nothing.
pub fn edit_patch(original: &Value, edited: &Value, resource_version: &str) -> Option<Value> {
    let without_status = |object: &Value| {
        let mut object = object.clone();
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        object
    };
    let mut patch = merge_diff(&without_status(original), &without_status(edited))?;
    let metadata = patch
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    // (`metadata: null` in the edit is left for the API server to refuse.)
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.insert(
            "resourceVersion".to_owned(),
            Value::String(resource_version.to_owned()),
        );
    }
    Some(patch)
}

/// RFC 7386 in reverse: the patch that, merged into `from`, gives `to`.
pub fn merge_diff(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => {
            let mut patch = Map::new();
            for (key, old) in from {
                match to.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(new) => {
                        if let Some(change) = merge_diff(old, new) {
                            patch.insert(key.clone(), change);
                        }
                    }
                }
            }
            for (key, new) in to {
                if !from.contains_key(key) {
                    patch.insert(key.clone(), new.clone());
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (from, to) if from == to => None,
        (_, to) => Some(to.clone()),
    }
}

/// Reads what the user saved: YAML (or JSON) of one object.
pub fn parse_edited(text: &str) -> Result<Value, String> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if value.is_object() {
        Ok(value)
    } else {
        Err("expected one object (apiVersion, kind, metadata, spec)".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn diff_is_a_merge_patch_that_reproduces_the_edit() {
        let from = json!({"spec": {"clusterSize": 1, "engine": {"type": "postgresql", "version": "17.6"},
                          "backup": {"enabled": true}, "tags": ["a", "b"]}, "status": {"ready": 1}});
        let to = json!({"spec": {"clusterSize": 3, "engine": {"type": "postgresql", "version": "17.6"},
                        "paused": true, "tags": ["a"]}, "status": {"ready": 0}});
        let patch = edit_patch(&from, &to, "42").unwrap();
        assert_eq!(
            patch,
            json!({"spec": {"clusterSize": 3, "backup": null, "paused": true, "tags": ["a"]},
                   "metadata": {"resourceVersion": "42"}})
        );
        let mut merged = from.clone();
        dbaas_merge(&mut merged, &patch);
        merged["status"] = to["status"].clone();
        merged.as_object_mut().unwrap().remove("metadata");
        assert_eq!(merged, to);
    }

    /// RFC 7386 merge, to check the diff against.
    fn dbaas_merge(target: &mut Value, patch: &Value) {
        let Value::Object(patch) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let map = target.as_object_mut().unwrap();
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                dbaas_merge(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }

    #[test]
    fn unchanged_or_status_only_edits_change_nothing() {
        let object =
            json!({"metadata": {"name": "pg"}, "spec": {"clusterSize": 1}, "status": {"ready": 1}});
        assert_eq!(edit_patch(&object, &object, "1"), None);
        let mut status_only = object.clone();
        status_only["status"]["ready"] = json!(3);
        assert_eq!(edit_patch(&object, &status_only, "1"), None);
    }

    #[test]
    fn the_document_hides_managed_fields_and_parses_back() {
        let object = json!({"apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
            "metadata": {"name": "pg", "managedFields": [{"manager": "x"}]}, "spec": {"clusterSize": 1}});
        let shown = editable(&object);
        let text = document(&shown).unwrap();
        assert!(text.starts_with("# Edit the DatabaseCluster"), "{text}");
        assert!(!text.contains("managedFields"), "{text}");
        assert_eq!(parse_edited(&text).unwrap(), shown);
        assert!(parse_edited("- a\n- b\n").is_err());
        assert!(parse_edited("spec: {clusterSize: [").is_err());
    }
}
