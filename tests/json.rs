//! `--json` on real roots: every event the scenarios produce is checked against the tables of
//! docs/json.md (kind, fields, types, which fields are always there), and the scenarios
//! together produce every kind documented.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use common::*;
use serde_json::Value;

/// Per event kind: field -> (type, always).
type Schema = BTreeMap<String, BTreeMap<String, (String, bool)>>;

fn documented() -> Schema {
    let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap();
    let mut schema = Schema::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("### `").and_then(|l| l.strip_suffix('`')) {
            current = Some(name.to_owned());
            schema.entry(name.to_owned()).or_default();
            continue;
        }
        let Some(kind) = &current else { continue };
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || cells[1] == "field" || cells[1].starts_with("---") {
            continue;
        }
        let always = match cells[3] {
            "yes" => true,
            "no" => false,
            other => panic!("{kind}.{}: always is {other:?}", cells[1]),
        };
        schema
            .get_mut(kind)
            .unwrap()
            .insert(cells[1].to_owned(), (cells[2].to_owned(), always));
    }
    schema
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// Checks one line against the schema and returns its kind.
fn check_line(schema: &Schema, line: &str) -> String {
    let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let object = value.as_object().expect(line);
    assert_eq!(object.get("schema"), Some(&Value::from(1)), "{line}");
    let kind = object["event"].as_str().expect(line).to_owned();
    let fields = schema
        .get(&kind)
        .unwrap_or_else(|| panic!("{line}: event {kind} is not documented"));
    for (name, value) in object {
        if name == "schema" || name == "event" {
            continue;
        }
        let (documented_type, _) = fields
            .get(name)
            .unwrap_or_else(|| panic!("{line}: field {kind}.{name} is not documented"));
        assert_eq!(type_of(value), documented_type, "{line}: {kind}.{name}");
        check_nested(name, value, line);
    }
    for (name, (_, always)) in fields {
        assert!(
            !always || object.contains_key(name),
            "{line}: {kind}.{name} missing"
        );
    }
    kind
}

/// Builds and reasons have the shape the document gives them.
fn check_nested(name: &str, value: &Value, line: &str) {
    let keys =
        |v: &Value| -> BTreeSet<String> { v.as_object().expect(line).keys().cloned().collect() };
    match name {
        "build" | "chosen" | "superseded_by" => {
            assert_eq!(
                keys(value),
                ["built_for", "path"].map(String::from).into(),
                "{line}"
            );
            assert!(value["path"].as_str().unwrap().starts_with('/'), "{line}");
        }
        "reasons" => {
            for reason in value.as_array().unwrap() {
                let keys = keys(reason);
                assert!(keys.contains("rule") && keys.contains("message"), "{line}");
                assert!(
                    keys.iter()
                        .all(|k| ["rule", "message", "symbol"].contains(&k.as_str()))
                );
            }
        }
        _ => {}
    }
}

fn json_run(
    root: &Root,
    args: &[&str],
    input: &str,
    schema: &Schema,
    seen: &mut BTreeSet<String>,
) -> Vec<String> {
    let mut all = vec!["--json"];
    all.extend(args);
    let run = root.run(&all, input);
    let kinds: Vec<String> = run
        .stdout
        .lines()
        .map(|line| check_line(schema, line))
        .collect();
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("summary"),
        "{args:?}"
    );
    seen.extend(kinds.iter().cloned());
    kinds
}

#[test]
fn every_event_of_every_mode_matches_the_documented_schema() {
    let schema = documented();
    let mut seen = BTreeSet::new();
    let root = Root::new();
    let dracut = with_images(&root, &[K53]);
    let dracut = dracut.to_str().unwrap();
    fs::write(
        root.join(&format!("boot/initramfs-{K56}.img")),
        "not an image",
    )
    .unwrap();
    let fxstable = root.fxstable_55();
    let input = format!(
        "{fxstable}\n{}\n/lib/modules/x\u{fffd}.ko\n",
        root.fxmisc_50()
    );
    json_run(
        &root,
        &["--add-modules", "--dracut", dracut],
        &input,
        &schema,
        &mut seen,
    );
    json_run(
        &root,
        &["--add-kernel", K53, "--dracut", dracut],
        "",
        &schema,
        &mut seen,
    );
    json_run(
        &root,
        &["--add-kernel", K54, "--dry-run"],
        "",
        &schema,
        &mut seen,
    );
    // A kernel like 56 gets both fxexport builds: 56's is newer and 55's is passed over.
    root.add_kernel_like(K56, K57);
    json_run(
        &root,
        &["--add-kernel", K57, "--no-initramfs"],
        "",
        &schema,
        &mut seen,
    );
    fs::remove_file(&fxstable).unwrap();
    // A link to something that is not a module (a warning), and a removed path whose file name
    // 53's fxstable link shares while leading elsewhere (skipped).
    fs::write(root.join("notes.ko"), "not a module").unwrap();
    root.plant_link(K56, "odd/notes.ko", "../../../../../notes.ko");
    let elsewhere = format!("/lib/modules/{KCLOUD}/extra/fx/fxstable.ko");
    root.plant_link(K56, "fx/.x.ko.weak-modules.1.0", "nowhere");
    json_run(
        &root,
        &["--remove-modules", "--no-initramfs"],
        &format!("{fxstable}\n{elsewhere}\n"),
        &schema,
        &mut seen,
    );
    fs::create_dir_all(root.weak_updates(K54)).unwrap();
    fs::write(
        root.weak_updates(K54).join(".weak-modules-owed"),
        "depmod\ninitramfs\n",
    )
    .unwrap();
    root.plant_link(
        K54,
        "fx/fxmisc.ko",
        "../../../6.1.0-50-amd64/extra/fx/fxmisc.ko",
    );
    json_run(&root, &["--check"], "", &schema, &mut seen);
    let explained = json_run(
        &root,
        &["--explain"],
        &format!("{}\n", root.fxmisc_50()),
        &schema,
        &mut seen,
    );
    assert!(explained.iter().filter(|kind| *kind == "verdict").count() >= 7);
    json_run(
        &root,
        &["--sync", "--dracut", dracut],
        "",
        &schema,
        &mut seen,
    );
    json_run(
        &root,
        &["--remove-kernel", K53, "--dry-run"],
        "",
        &schema,
        &mut seen,
    );
    json_run(&root, &["--remove-kernel", K53], "", &schema, &mut seen);

    let documented: BTreeSet<String> = schema.keys().cloned().collect();
    let never: Vec<&String> = documented.difference(&seen).collect();
    // A kernel without symvers that loses a link needs a tree this scenario does not build.
    assert_eq!(
        never,
        ["depmod_skipped"].iter().collect::<Vec<_>>(),
        "event kinds no scenario produced"
    );
}

#[test]
fn a_check_in_json_is_pinned_whole() {
    let root = Root::new();
    let sync = root.run(&["--sync", "--no-initramfs"], "");
    assert_eq!(sync.status, 0, "{}", sync.stderr);
    root.remove(&format!("lib/modules/{K55}/extra/fx/fxmisc.ko"));
    let run = root.run(&["--check", "--json", K56], "");
    assert_eq!(run.status, 1);
    assert_eq!(run.stdout, include_str!("golden/check-56.jsonl"));
}
