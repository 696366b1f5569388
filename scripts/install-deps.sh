#!/usr/bin/env bash
# Installs what building and testing elfuse needs on Debian 12 (x86_64), as root:
#   - gcc-aarch64-linux-gnu + libc6-dev-arm64-cross: builds the AArch64 test guests (static glibc);
#     libc6-arm64-cross puts the arm64 glibc and loader in /usr/aarch64-linux-gnu, elfuse's
#     default sysroot for dynamic programs whose loader is not on the host
#   - musl for arm64, unpacked into target/musl-arm64/ inside this clone (nothing outside it),
#     with a gcc specs file: aarch64-linux-gnu-gcc -specs target/musl-arm64/musl-gcc.specs -static
#   - qemu-user-static: the peer emulator; tests compare guest output with it, the bench times it
#   - hyperfine: for ad-hoc timing
#   - gdb-multiarch: tests/gdb.rs drives it against `elfuse -g`
# Idempotent and quiet; when everything is present it makes no network access and takes ~1 s.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MUSL_DIR="$ROOT/target/musl-arm64"
SPECS="$MUSL_DIR/musl-gcc.specs"
PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross libc6-arm64-cross qemu-user-static hyperfine gdb-multiarch python3)
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
export DEBIAN_FRONTEND=noninteractive

run() { # run a command quietly; show its output only if it fails
    if ! "$@" >>"$LOG" 2>&1; then
        echo "install-deps: failed: $*" >&2
        cat "$LOG" >&2
        exit 1
    fi
}

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root (apt-get)" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_musl=0
# The specs file embeds absolute paths: regenerate it if the clone moved.
if [ ! -f "$SPECS" ] || ! grep -qF "$MUSL_DIR/usr/lib/aarch64-linux-musl" "$SPECS"; then
    need_musl=1
fi

updated=0
update_once() {
    if [ "$updated" -eq 0 ]; then
        run apt-get update -qq
        updated=1
    fi
}

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    run dpkg --add-architecture arm64
fi

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    update_once
    run apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$need_musl" -eq 1 ]; then
    echo "install-deps: unpacking musl (arm64) into ${MUSL_DIR#"$ROOT"/}"
    rm -rf "$MUSL_DIR" "$MUSL_DIR.tmp"
    mkdir -p "$MUSL_DIR.tmp/debs"
    # apt-get download needs the arm64 package lists: fetch them if this fails.
    if ! (cd "$MUSL_DIR.tmp/debs" && apt-get download -qq -o APT::Sandbox::User=root musl:arm64 musl-dev:arm64 >>"$LOG" 2>&1); then
        update_once
        (cd "$MUSL_DIR.tmp/debs" && run apt-get download -qq -o APT::Sandbox::User=root musl:arm64 musl-dev:arm64)
    fi
    for deb in "$MUSL_DIR.tmp"/debs/*.deb; do
        run dpkg-deb -x "$deb" "$MUSL_DIR.tmp"
    done
    rm -rf "$MUSL_DIR.tmp/debs"
    mv "$MUSL_DIR.tmp" "$MUSL_DIR"
    # Debian's specs file hard-codes /usr/{include,lib}/aarch64-linux-musl: point them here.
    sed -e "s#/usr/include/aarch64-linux-musl#$MUSL_DIR/usr/include/aarch64-linux-musl#g" \
        -e "s#/usr/lib/aarch64-linux-musl#$MUSL_DIR/usr/lib/aarch64-linux-musl#g" \
        "$MUSL_DIR/usr/lib/aarch64-linux-musl/musl-gcc.specs" >"$SPECS"
fi

# Verify: a static hello for each libc builds and runs under qemu.
CHECK_DIR="$(mktemp -d)"
trap 'rm -f "$LOG"; rm -rf "$CHECK_DIR"' EXIT
printf '#include <stdio.h>\nint main(void){puts("hello");return 0;}\n' >"$CHECK_DIR/hello.c"
run aarch64-linux-gnu-gcc -O2 -static -o "$CHECK_DIR/hello-glibc" "$CHECK_DIR/hello.c"
run aarch64-linux-gnu-gcc -specs "$SPECS" -O2 -static -o "$CHECK_DIR/hello-musl" "$CHECK_DIR/hello.c"
for libc in glibc musl; do
    out="$(qemu-aarch64-static "$CHECK_DIR/hello-$libc" 2>&1)" || true
    if [ "$out" != "hello" ]; then
        echo "install-deps: the $libc hello does not run under qemu-aarch64-static: $out" >&2
        exit 1
    fi
done
echo "install-deps: ok (aarch64 gcc, glibc + musl, qemu-aarch64-static, hyperfine, gdb-multiarch)"
