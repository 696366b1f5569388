//! Real programs from Debian 12 arm64 (the root of `scripts/rootfs.sh`: dynamic glibc
//! programs, their shared libraries, python's standard library) under
//! `elfuse --sysroot ROOT`, compared with `qemu-aarch64-static -L ROOT` where qemu can run
//! them, and with the host's own (x86_64, same Debian versions) programs or literal
//! expected output where it cannot: qemu-user without binfmt_misc runs a guest's children
//! on the host, so scripts that start other programs have no qemu reference.
//!
//! Without the rootfs (no apt, no arm64 architecture, no network) the tests print
//! `skipped: ...` and pass; with `CI=true` they fail. The README's "What runs" table lists
//! these commands.

mod common;

use common::rootfs::{elfuse_in, rootfs, run_real, strings, text};
use common::*;
use std::path::Path;
use std::process::Command;

/// The host's own program (x86_64, same Debian release), for a reference output.
fn host(prog: &str, args: &[String], stdin: &[u8]) -> Option<Vec<u8>> {
    let path = which(prog)?;
    let mut cmd = Command::new(path);
    cmd.args(args).env_clear().envs(GUEST_ENV.iter().copied());
    let out = run(cmd, stdin);
    assert_eq!(out.status, 0, "host {prog}\n{}", out.describe());
    Some(out.stdout)
}

const PY_ARITH: &str = "\
import json
print(2**100, 7/2, 7//2, -7 % 3, round(2.675, 2), 1e300*1e10)
print(json.dumps({'b': [1, 2.5, None, True], 'a': 'é'}, sort_keys=True))
print(json.loads('[1, {\"x\": \"y\"}]'))
s = 0
for i in range(200000):
    s += i * i % 7
print(s)
print(sorted({3, 1, 2}), list(map(str.upper, ['a', 'b'])))
";

#[test]
fn python3_arithmetic_json_loop() {
    let Some(root) = rootfs() else { return };
    let out = text(run_real(
        &root,
        "/usr/bin/python3",
        &strings(&["-c", PY_ARITH]),
        b"",
        true,
    ));
    assert_eq!(
        out,
        "1267650600228229401496703205376 3.5 3 2 2.67 inf\n\
         {\"a\": \"\\u00e9\", \"b\": [1, 2.5, null, true]}\n\
         [1, {'x': 'y'}]\n\
         399999\n\
         [1, 2, 3] ['A', 'B']\n"
    );
}

/// Modules that are shared objects in lib-dynload (loaded with dlopen) and stdlib code.
#[test]
fn python3_stdlib_extension_modules() {
    let Some(root) = rootfs() else { return };
    let script = "\
import hashlib, zlib, struct, re, datetime, decimal, sqlite3, base64
print(hashlib.sha256(b'elfuse').hexdigest())
d = b'abc' * 1000
print(len(zlib.compress(d)) < 100, zlib.decompress(zlib.compress(d)) == d)
print(struct.pack('<IhQ', 1, -2, 3).hex(), re.sub(r'(\\d+)', r'<\\1>', 'a1b22'))
print(datetime.datetime(2024, 2, 29, 12).isoformat(), decimal.Decimal(1) / decimal.Decimal(7))
con = sqlite3.connect(':memory:')
print(con.execute('select sqlite_version() >= \"3\", 6*7').fetchone())
print(base64.b64encode(b'arm64').decode())
";
    let out = text(run_real(
        &root,
        "/usr/bin/python3",
        &strings(&["-c", script]),
        b"",
        true,
    ));
    assert_eq!(
        out,
        "87097914b16b96d167ef08a895d4d3f81f24267a617faca4b97c30183eb5fe02\n\
         True True\n\
         01000000feff0300000000000000 a<1>b<22>\n\
         2024-02-29T12:00:00 0.1428571428571428571428571429\n\
         (1, 42)\n\
         YXJtNjQ=\n"
    );
}

#[test]
fn bash_builtins() {
    let Some(root) = rootfs() else { return };
    let script = r#"
declare -A m=([x]=1 [y]=2)
for i in 1 2 3; do echo $((i * i)); done
s=hello; echo "${s^^} ${#s} ${s:1:3} ${m[y]}"
[[ abc == a* ]] && echo match
printf '%05d|%-4s|%x\n' 42 ab 255
f() { local r=$1; echo $((r + 1)); }; echo "$(f 41)"
read -r line; echo "read: $line"
"#;
    let out = text(run_real(
        &root,
        "/bin/bash",
        &strings(&["-c", script]),
        b"from stdin\n",
        true,
    ));
    assert_eq!(
        out,
        "1\n4\n9\nHELLO 5 ell 2\nmatch\n00042|ab  |ff\n42\nread: from stdin\n"
    );
}

/// bash forking and executing other dynamic programs of the root (execve inside elfuse),
/// in pipelines. No qemu reference (its children would run on the host).
#[test]
fn bash_runs_coreutils_pipelines() {
    let Some(root) = rootfs() else { return };
    let script = r#"
printf 'pear\napple\nfig\napple\n' | sort | uniq -c | sort -rn | head -1 | tr -s ' '
echo hello | tr a-z A-Z
seq 1 100 | awk '{s += $1} END {print s}'
x=$(echo abc | wc -c); echo "wc: $x"
/bin/sh -c 'echo from dash: $0' arg0
env -i /usr/bin/printenv | wc -l
"#;
    let out = text(run_real(
        &root,
        "/bin/bash",
        &strings(&["-c", script]),
        b"",
        false,
    ));
    assert_eq!(
        out, " 2 apple\nHELLO\n5050\nwc: 4\nfrom dash: arg0\n0\n",
        "bash pipeline under elfuse"
    );
}

#[test]
fn busybox_sh_and_sort() {
    let Some(root) = rootfs() else { return };
    let out = text(run_real(
        &root,
        "/bin/busybox",
        &strings(&[
            "sh",
            "-c",
            "x=abcd; echo $((6 * 7)) ${#x}; for w in b a; do echo $w; done",
        ]),
        b"",
        true,
    ));
    assert_eq!(out, "42 4\nb\na\n");
    let input = b"pear\napple\n10\n9\nfig\n";
    let out = text(run_real(
        &root,
        "/bin/busybox",
        &strings(&["sort"]),
        input,
        true,
    ));
    assert_eq!(out, "10\n9\napple\nfig\npear\n");
    let out = text(run_real(
        &root,
        "/bin/busybox",
        &strings(&["sort", "-n"]),
        input,
        true,
    ));
    assert_eq!(out, "apple\nfig\npear\n9\n10\n");
}

#[test]
fn busybox_sha256sum_matches_the_host() {
    let Some(root) = rootfs() else { return };
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let out = run_real(&root, "/bin/busybox", &strings(&["sha256sum"]), &data, true);
    if let Some(h) = host("sha256sum", &[], &data) {
        assert_eq!(text(out), text(h));
    } else {
        assert_eq!(out.len(), 64 + 4, "{}", text(out));
    }
}

/// gzip with busybox under elfuse; decompressed by busybox under elfuse and by the host's
/// gzip. The compressed bytes are compared with qemu's.
#[test]
fn busybox_gzip_round_trip() {
    let Some(root) = rootfs() else { return };
    let data: Vec<u8> = (0..50_000u32)
        .flat_map(|i| format!("line {i} {}\n", i % 13).into_bytes())
        .collect();
    let gz = run_real(
        &root,
        "/bin/busybox",
        &strings(&["gzip", "-c"]),
        &data,
        true,
    );
    assert!(
        gz.len() < data.len() / 3,
        "gzip output of {} bytes",
        gz.len()
    );
    let back = run_real(
        &root,
        "/bin/busybox",
        &strings(&["gunzip", "-c"]),
        &gz,
        true,
    );
    assert!(back == data, "busybox gunzip did not give the input back");
    if let Some(h) = host("gzip", &strings(&["-dc"]), &gz) {
        assert!(h == data, "the host's gzip -dc did not give the input back");
    }
}

/// coreutils reading a host file, against the host's coreutils (both 9.1).
#[test]
fn coreutils_match_the_host() {
    let Some(root) = rootfs() else { return };
    let dir = TempDir::new();
    let f = dir.path().join("words.txt");
    std::fs::write(&f, "delta\nalpha\ncharlie\nbravo\nalpha\n").unwrap();
    let f = f.to_str().unwrap().to_string();
    for (prog, args) in [
        ("sort", vec!["-u".to_string(), f.clone()]),
        ("wc", vec![f.clone()]),
        ("sha256sum", vec![f.clone()]),
        ("cat", vec!["-n".to_string(), f.clone()]),
        ("expr", strings(&["6", "*", "7"])),
    ] {
        let out = run_real(&root, &format!("/usr/bin/{prog}"), &args, b"", true);
        if let Some(h) = host(prog, &args, b"") {
            assert_eq!(text(out), text(h), "{prog} {args:?}");
        }
    }
}

#[test]
fn perl_one_liner() {
    let Some(root) = rootfs() else { return };
    let out = text(run_real(
        &root,
        "/usr/bin/perl",
        &strings(&["-e", "my %h = (a => 1, b => 2); print join(',', map { \"$_=$h{$_}\" } sort keys %h), ' ', 6*7, \"\\n\""]),
        b"",
        true,
    ));
    assert_eq!(out, "a=1,b=2 42\n");
}

#[test]
fn sqlite3_in_memory() {
    let Some(root) = rootfs() else { return };
    let sql =
        "create table t(a integer, b text); insert into t values (1, 'x'), (2, 'y'), (3, 'x'); \
               select b, sum(a) from t group by b order by b;";
    let out = text(run_real(
        &root,
        "/usr/bin/sqlite3",
        &strings(&[":memory:", sql]),
        b"",
        true,
    ));
    assert_eq!(out, "x|4\ny|2\n");
}

/// A database file in a host directory: sqlite creates it (and its journal) there.
#[test]
fn sqlite3_database_in_a_host_directory() {
    let Some(root) = rootfs() else { return };
    let dir = TempDir::new();
    let db = dir.path().join("t.db").to_str().unwrap().to_string();
    let sql = "create table t(a); insert into t values (20), (22); select sum(a) from t;";
    let out = text(run_real(
        &root,
        "/usr/bin/sqlite3",
        &strings(&[&db, sql]),
        b"",
        false,
    ));
    assert_eq!(out, "42\n");
    let out = text(run_real(
        &root,
        "/usr/bin/sqlite3",
        &strings(&[&db, "select count(*) from t;"]),
        b"",
        false,
    ));
    assert_eq!(out, "2\n");
    assert!(
        Path::new(&db).is_file(),
        "the database is in the host directory"
    );
}

#[test]
fn git_hash_object_matches_the_host() {
    let Some(root) = rootfs() else { return };
    let data = b"elfuse runs git\n";
    let out = run_real(
        &root,
        "/usr/bin/git",
        &strings(&["hash-object", "--stdin"]),
        data,
        true,
    );
    // The blob id is git's SHA-1 of "blob 16\0" + the data (the host's git agrees).
    assert_eq!(text(out), "06a697b3cd3f97b7d2fcbcee33f1ee6f2076ba07\n");
}

/// git init, add and commit in a host directory, then log.
#[test]
fn git_init_add_commit() {
    let Some(root) = rootfs() else { return };
    let dir = TempDir::new();
    let repo = dir.path().to_str().unwrap().to_string();
    std::fs::write(dir.path().join("a.txt"), "one\n").unwrap();
    let git = |args: &[&str]| {
        let mut all = strings(&[
            "-C",
            &repo,
            "-c",
            "user.name=elfuse",
            "-c",
            "user.email=e@x",
        ]);
        all.extend(strings(args));
        let mut cmd = elfuse_in(&root, "/usr/bin/git", &all);
        cmd.env("HOME", &repo).env("GIT_CONFIG_NOSYSTEM", "1");
        cmd.env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z");
        cmd.env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z");
        let out = run(cmd, b"");
        assert_eq!(out.status, 0, "git {args:?}\n{}", out.describe());
        text(out.stdout)
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "a.txt"]);
    git(&["commit", "-q", "-m", "first"]);
    assert_eq!(git(&["log", "--format=%s %an"]), "first elfuse\n");
    assert_eq!(git(&["ls-files"]), "a.txt\n");
}

#[test]
fn curl_reads_a_file_url() {
    let Some(root) = rootfs() else { return };
    let dir = TempDir::new();
    let f = dir.path().join("page.txt");
    std::fs::write(&f, "served by file://\n").unwrap();
    let url = format!("file://{}", f.display());
    let out = text(run_real(
        &root,
        "/usr/bin/curl",
        &strings(&["-sS", &url]),
        b"",
        true,
    ));
    assert_eq!(out, "served by file://\n");
}

/// bash and the programs it starts reading each other's /proc/<pid> (`cat
/// /proc/$PPID/status`, `ls -l /proc/$$/fd`, a background job's cmdline and status, gone
/// once reaped): each other's guest, never elfuse, as the host's own bash shows on Linux
/// (the reference when the host has bash). No qemu reference: qemu-user shows its own
/// host process there.
#[test]
fn bash_reads_other_processes_proc() {
    let Some(root) = rootfs() else { return };
    let script = r#"
exec 5</etc/debian_version
grep -E '^(Name|Threads|Umask):' /proc/$$/status
sh -c 'for f in /proc/$PPID/fd/*; do [ ${f##*/} -lt 10 ] && printf "%s " ${f##*/}; done; echo'
ls -l /proc/$$/fd | awk '$9 == 5 {print $1, $9, $10, $11}'
ls /proc/$$/task | wc -l
sh -c 'grep -E "^(Name|Threads):" /proc/$PPID/status; readlink /proc/$PPID/fd/5; cat /proc/$PPID/fd/5 | wc -c'
tr '\0' '\n' < /proc/$$/cmdline | sed -n 2p
sleep 5 & k=$!
until [ "$(tr '\0' ' ' < /proc/$k/cmdline)" = "sleep 5 " ]; do :; done
tr '\0' ' ' < /proc/$k/cmdline; echo
grep -E '^(Name|Threads|PPid):' /proc/$k/status | sed "s/$$/BASH/"
grep -c elfuse /proc/$k/maps
kill $k; wait $k; echo "status $?"
test -e /proc/$k/status || echo gone
"#;
    let out = text(run_real(
        &root,
        "/bin/bash",
        &strings(&["-c", script]),
        b"",
        false,
    ));
    let version = std::fs::read(root.join("etc/debian_version"))
        .unwrap()
        .len();
    let expected = format!(
        "Name:\tbash\nUmask:\t0022\nThreads:\t1\n0 1 2 5 \nlr-x------ 5 -> /etc/debian_version\n\
         1\nName:\tbash\nThreads:\t1\n/etc/debian_version\n{version}\n-c\nsleep 5 \n\
         Name:\tsleep\nPPid:\tBASH\nThreads:\t1\n0\nstatus 143\ngone\n"
    );
    assert_eq!(out, expected, "elfuse");
    if std::fs::read("/etc/debian_version").map(|v| v.len()).ok() == Some(version) {
        if let Some(host) = host("bash", &strings(&["-c", script]), b"") {
            assert_eq!(text(host), expected, "the host's bash");
        }
    }
}
