//! `--json` as a script reads it: every line parses, and every object has
//! every field that README.md's JSON table documents. No root needed: the
//! targets here fail before anything is touched (the objects of unmounted
//! targets are checked in report.rs's unit tests, and by the host tests).

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// The field names of README.md's `## JSON` table (its first column).
fn documented_fields() -> BTreeSet<String> {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## JSON\n")
        .nth(1)
        .expect("README.md has a JSON section")
        .split("\n## ")
        .next()
        .unwrap();
    let fields: BTreeSet<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|row| row.split(" |").next())
        .flat_map(|names| names.split(", "))
        .map(|name| name.trim_matches('`').to_string())
        .collect();
    assert!(fields.len() > 10, "too few fields found: {fields:?}");
    fields
}

fn objects(args: &[&str]) -> (i32, Vec<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_umount-wait"))
        .args(args)
        .output()
        .expect("running umount-wait");
    let stdout = String::from_utf8(out.stdout).expect("JSON is UTF-8");
    let objects = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    (out.status.code().expect("an exit code"), objects)
}

#[test]
fn failed_targets_have_every_documented_field() {
    let dir = std::env::temp_dir().join(format!("umw-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let odd = dir.join("a \"b\"\n\\c");
    std::fs::create_dir_all(&odd).unwrap();
    let missing = dir.join("missing");
    let (code, objects) = objects(&[
        "--json",
        "--mode",
        "fallback",
        odd.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 32, "{objects:?}");
    assert_eq!(objects.len(), 2, "{objects:?}");
    let documented = documented_fields();
    for object in &objects {
        let fields: BTreeSet<String> = object.as_object().unwrap().keys().cloned().collect();
        let missing: Vec<_> = documented.difference(&fields).collect();
        let undocumented: Vec<_> = fields.difference(&documented).collect();
        assert!(
            missing.is_empty() && undocumented.is_empty(),
            "missing {missing:?}, undocumented {undocumented:?} in {object}"
        );
        assert_eq!(object["outcome"], "untouched");
        assert_eq!(object["path"], "fallback");
        assert_eq!(object["device_nodes"], Value::Array(vec![]));
        assert_eq!(object["blockers"], Value::Array(vec![]));
        // README: "the mount fields and the times are null".
        for (name, value) in object.as_object().unwrap() {
            let mount_field = ["mount_point", "source", "fstype", "device", "device_node"]
                .contains(&name.as_str());
            if mount_field || name.ends_with("_ms") || name == "reason" {
                assert!(value.is_null(), "{name} in {object}");
            }
        }
        assert_eq!(object["read_only_through"], Value::Null);
        assert!(object["error"].as_str().unwrap().contains("(untouched)"));
    }
    assert_eq!(objects[0]["target"], odd.to_str().unwrap());
    assert_eq!(objects[1]["target"], missing.to_str().unwrap());
    assert_eq!(objects[1]["errno"], 2, "{}", objects[1]);
}
