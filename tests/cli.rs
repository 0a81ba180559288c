//! The `xgw check` and `xgw route get` commands, run as a user would.
// Integration tests live at the crate root of their own test binary.
#![allow(clippy::tests_outside_test_module)]

use std::{path::PathBuf, process::Command};

fn xgw(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xgw"))
        .args(args)
        .output()
        .expect("run xgw");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xgw-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn lab() -> String {
    format!("{}/configs/lab.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_configs_check_ok() {
    for f in ["lab.toml", "nat.toml", "router.example.toml"] {
        let p = format!("{}/configs/{f}", env!("CARGO_MANIFEST_DIR"));
        let (code, out, err) = xgw(&["check", "--config", &p]);
        assert_eq!(code, 0, "{f}: {out}{err}");
    }
}

#[test]
fn syntax_error_reports_file_line_col() {
    let p = write(
        "syntax.toml",
        "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\n",
    );
    let (code, _, err) = xgw(&["check", "--config", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    let want = format!("{}:3:", p.display());
    assert!(err.starts_with(&want), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn semantic_errors_name_the_field() {
    let cases = [
        (
            "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[[interface]]\nname = \"r1\"\naddress = \"198.18.0.9/16\"\n",
            "interface[1].address",
        ),
        (
            "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"198.19.0.254\"\n",
            "route[0].via",
        ),
        (
            "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[[route]]\nprefix = \"203.0.113.0/24\"\ndev = \"r9\"\n",
            "route[0].dev",
        ),
        (
            "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[[route]]\nprefix = \"203.0.113.1/24\"\ndev = \"r0\"\n",
            "route[0].prefix",
        ),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let p = write(&format!("sem{i}.toml"), text);
        let (code, _, err) = xgw(&["check", "--config", p.to_str().unwrap()]);
        assert_eq!(code, 1, "case {i}");
        assert!(err.contains(field), "case {i}: expected {field} in {err}");
    }
}

#[test]
fn route_get_prints_prefix_via_dev() {
    let (code, out, err) = xgw(&["route", "get", "--config", &lab(), "203.0.113.9", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["prefix"], "203.0.113.0/24");
    assert_eq!(v["via"], "198.19.0.2");
    assert_eq!(v["dev"], "r1");
    let (_, out, _) = xgw(&["route", "get", "--config", &lab(), "198.18.0.77", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["prefix"], "198.18.0.0/24");
    assert!(v["via"].is_null());
    assert_eq!(v["dev"], "r0");
    let (code, out, _) = xgw(&["route", "get", "--config", &lab(), "203.0.113.9"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "203.0.113.9 via 198.19.0.2 dev r1 prefix 203.0.113.0/24"
    );
    let (code, _, err) = xgw(&["route", "get", "--config", &lab(), "192.0.2.1"]);
    assert_eq!(code, 1);
    assert!(err.contains("no route"));
}
