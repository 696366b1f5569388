//! `elfuse --help` names every option the parser accepts and every environment variable
//! elfuse reads: both lists are taken from the sources (`"--name"` match arms in
//! src/cli.rs, `var("NAME")` / `var_os("NAME")` calls and `ENV_VARS` in src/), so a new
//! option or variable without a help line fails here.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// Options that are internal (not for users) and stay out of --help.
const HIDDEN: &[&str] = &["--fork-child"];

fn sources(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// Every string literal that starts with `prefix` and ends at the next `"`.
fn quoted_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .filter_map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn help_lists_every_option_and_variable() {
    let mut cmd = Command::new(ELFUSE);
    cmd.arg("--help");
    let out = run(cmd, b"");
    assert_eq!(out.status, 0, "{}", out.describe());
    let help = out.stdout_str();

    let cli = std::fs::read_to_string(repo_root().join("src/cli.rs")).unwrap();
    // Match arms only: `"--name" =>` or `"--name" |`.
    let mut options: Vec<String> = quoted_after(&cli, "\"--")
        .into_iter()
        .filter(|o| {
            let arm = format!("\"--{o}\" =>");
            let alt = format!("\"--{o}\" |");
            cli.contains(&arm) || cli.contains(&alt)
        })
        .filter(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(|o| format!("--{o}"))
        .filter(|o| !HIDDEN.contains(&o.as_str()))
        .collect();
    options.sort();
    options.dedup();
    assert!(options.len() >= 8, "found only {options:?} in src/cli.rs");

    let mut texts = Vec::new();
    sources(&repo_root().join("src"), &mut texts);
    let mut vars: Vec<String> = Vec::new();
    for t in &texts {
        for prefix in ["var(\"", "var_os(\""] {
            vars.extend(quoted_after(t, prefix).into_iter().map(str::to_string));
        }
        if let Some(i) = t.find("ENV_VARS: [&str; ") {
            let line = t[i..].lines().next().unwrap();
            vars.extend(quoted_after(line, "\"").into_iter().map(str::to_string));
        }
    }
    vars.retain(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
    vars.sort();
    vars.dedup();
    for must in [
        "ELFUSE_SYSROOT",
        "QEMU_LD_PREFIX",
        "ELFUSE_FORK",
        "ELFUSE_STARTUP_TRACE",
    ] {
        assert!(
            vars.iter().any(|v| v == must),
            "{must} not found in the sources: {vars:?}"
        );
    }
    vars.push("RUST_LOG".into());

    for name in options.iter().chain(&vars) {
        assert!(
            help.contains(name.as_str()),
            "--help does not mention {name}:\n{help}"
        );
    }
}
