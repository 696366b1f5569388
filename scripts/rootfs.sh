#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) arm64 root filesystem from .debs, for running real programs
# under elfuse (`elfuse --sysroot target/rootfs-arm64 /usr/bin/python3 ...`, or through
# binfmt_misc with `chroot target/rootfs-arm64 /bin/sh`).
#
#   scripts/rootfs.sh            build (or reuse) target/rootfs-arm64/ of this clone; prints its path
#   scripts/rootfs.sh --force    rebuild it from the cached .debs
#   ELFUSE_ROOTFS_DIR=DIR        build it in DIR instead
#
# How: the package list below (PACKAGES) is resolved with its dependencies, recursively, for arm64
# by apt itself (`apt-get install --print-uris` against an empty dpkg status, so nothing on the
# host counts as installed), the .debs are fetched with `apt-get download` into
# target/rootfs-debs/ (kept: a rebuild downloads only what changed) and unpacked with
# `dpkg-deb -x`. No maintainer script runs, so the script does by hand what they would have
# done: the merged-/usr layout (/bin, /sbin, /lib -> usr/...), /etc/passwd and /etc/group from
# base-passwd, /bin/sh -> dash, awk -> mawk, /etc/ld.so.cache, and the Python standard library precompiled to
# .pyc (Debian ships none; without them every python3 start would compile what it imports).
# The only network access is to the package registry, and only when a .deb is missing.
#
# Needs: Debian with arm64 as a foreign architecture (scripts/install-deps.sh adds it), apt,
# dpkg-deb, and root only when the arm64 package lists are missing (apt-get update). A stamp
# file records the package list; when it matches, the script prints the path and exits (~10 ms).
set -euo pipefail

# The documented package list. Everything they depend on (Depends and Pre-Depends, not
# Recommends) comes along; ~80 packages, ~90 MB of .debs, ~330 MB unpacked.
PACKAGES=(
    libc6            # glibc 2.36 and the dynamic loader /lib/ld-linux-aarch64.so.1
    libc-bin         # ldconfig (run below: the root gets its own /etc/ld.so.cache)
    base-files       # /etc/os-release, /etc/profile, the FHS skeleton
    base-passwd      # /etc/passwd and /etc/group (master copies; installed below)
    dash             # /bin/sh
    bash             # /bin/bash
    coreutils        # ls, cat, sort, ...
    busybox          # busybox 1.35 (dynamic), its applets run as `busybox APPLET`
    mawk             # awk
    grep sed findutils diffutils gzip tar
    python3          # python 3.11 and its standard library
    sqlite3          # the sqlite3 shell (libsqlite3)
    git              # git 2.39 (pulls in perl-base and libcurl)
    curl             # curl 7.88
)
# Bump when the steps below change what a root contains (the stamp then forces a rebuild).
LAYOUT_VERSION=2

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ELFUSE_ROOTFS_DIR:-$ROOT_DIR/target/rootfs-arm64}"
DEBS="$ROOT_DIR/target/rootfs-debs"
STAMP="$OUT/.elfuse-rootfs-stamp"
FORCE=0
for a in "$@"; do
    case "$a" in
    --force) FORCE=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "rootfs: unknown argument '$a' (see --help)" >&2
        exit 2
        ;;
    esac
done

want_stamp="layout=$LAYOUT_VERSION packages=${PACKAGES[*]}"
if [ "$FORCE" -eq 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ]; then
    echo "$OUT"
    exit 0
fi

log() { echo "rootfs: $*" >&2; }
die() {
    echo "rootfs: $*" >&2
    exit 1
}

# One build at a time (test binaries may call this script concurrently): wait for the lock,
# then look at the stamp again.
mkdir -p "$(dirname "$OUT")"
exec 9>"$OUT.lock"
flock 9
if [ "$FORCE" -eq 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ]; then
    echo "$OUT"
    exit 0
fi

for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || die "$tool not found (this script needs Debian's apt and dpkg)"
done
if ! dpkg --print-foreign-architectures 2>/dev/null | grep -qx arm64; then
    die "arm64 is not a dpkg architecture here: run scripts/install-deps.sh (or dpkg --add-architecture arm64 && apt-get update) as root"
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/status" # an empty dpkg status: apt resolves the whole closure

# The closure, as apt resolves it for an arm64 machine with nothing installed: lines of
# 'URI' FILENAME SIZE HASH.
resolve() {
    apt-get install --print-uris -qq -y --no-install-recommends \
        -o APT::Architecture=arm64 -o APT::Architectures=arm64 \
        -o Dir::State::status="$TMP/status" -o Debug::NoLocking=1 \
        "${PACKAGES[@]}" >"$TMP/uris" 2>"$TMP/resolve.err"
}
if ! resolve || ! grep -q "_arm64.deb" "$TMP/uris"; then
    [ "$(id -u)" -eq 0 ] || die "the arm64 package lists are missing and updating them needs root: run apt-get update as root ($(head -c 300 "$TMP/resolve.err"))"
    log "updating the package lists (apt-get update)"
    apt-get update -qq >"$TMP/update.log" 2>&1 || die "apt-get update failed: $(tail -5 "$TMP/update.log")"
    resolve || die "cannot resolve the package list for arm64: $(head -c 600 "$TMP/resolve.err")"
fi

# FILENAME -> the apt-get download argument NAME:ARCH=VERSION (the file name is
# NAME_VERSION_ARCH.deb with the epoch's ':' written as %3a).
mapfile -t FILES < <(sed -n "s/^'[^']*' \([^ ]*\.deb\) .*/\1/p" "$TMP/uris")
[ "${#FILES[@]}" -gt 0 ] || die "apt resolved no packages (see $TMP/uris)"
mkdir -p "$DEBS"
missing=()
for f in "${FILES[@]}"; do
    [ -s "$DEBS/$f" ] && continue
    base="${f%.deb}"
    name="${base%%_*}"
    rest="${base#*_}"
    version="${rest%_*}"
    arch="${rest##*_}"
    version="${version//%3a/:}"
    [ "$arch" = all ] && arch=arm64 # apt finds Architecture: all packages under arm64 too
    missing+=("$name:$arch=$version")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "downloading ${#missing[@]} of ${#FILES[@]} packages into ${DEBS#"$ROOT_DIR"/}"
    (cd "$DEBS" && apt-get download -qq -o APT::Sandbox::User=root \
        -o APT::Architecture=arm64 "${missing[@]}" >"$TMP/download.log" 2>&1) ||
        die "apt-get download failed: $(tail -5 "$TMP/download.log")"
    for f in "${FILES[@]}"; do
        [ -s "$DEBS/$f" ] || die "apt-get download did not produce $f"
    done
fi

# Unpack into a fresh directory next to OUT, then move it into place: an interrupted run
# leaves no half root behind.
NEW="$OUT.new"
rm -rf "$NEW"
mkdir -p "$NEW"
i=0
for f in "${FILES[@]}"; do
    i=$((i + 1))
    shown="${f%.deb}"
    log "[$i/${#FILES[@]}] ${shown//%3a/:}"
    dpkg-deb -x "$DEBS/$f" "$NEW" || die "dpkg-deb -x $f failed"
done

# Merged /usr: bookworm's packages still ship files under /bin, /sbin and /lib; move them
# into /usr and leave the compatibility links (what usrmerge does on a real system).
for d in bin sbin lib lib64; do
    if [ -d "$NEW/$d" ] && [ ! -L "$NEW/$d" ]; then
        mkdir -p "$NEW/usr/$d"
        cp -a "$NEW/$d/." "$NEW/usr/$d/"
        rm -rf "${NEW:?}/$d"
    fi
    [ -d "$NEW/usr/$d" ] && ln -s "usr/$d" "$NEW/$d"
done

# What the maintainer scripts would have done.
cp "$NEW/usr/share/base-passwd/passwd.master" "$NEW/etc/passwd"
cp "$NEW/usr/share/base-passwd/group.master" "$NEW/etc/group"
ln -sf dash "$NEW/usr/bin/sh"
ln -sf mawk "$NEW/usr/bin/awk"
[ -e "$NEW/usr/bin/which.debianutils" ] && ln -sf which.debianutils "$NEW/usr/bin/which"
if [ -f "$NEW/usr/share/base-files/nsswitch.conf" ] && [ ! -e "$NEW/etc/nsswitch.conf" ]; then
    cp "$NEW/usr/share/base-files/nsswitch.conf" "$NEW/etc/nsswitch.conf"
fi
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$NEW/etc/hosts"
echo elfuse-arm64 >"$NEW/etc/hostname"
mkdir -p "$NEW/dev" "$NEW/proc" "$NEW/sys" "$NEW/run" "$NEW/root" "$NEW/home" "$NEW/tmp" "$NEW/var/tmp"
chmod 1777 "$NEW/tmp" "$NEW/var/tmp"
chmod 700 "$NEW/root"

# The loader's cache of the root's libraries (ldconfig's postinst trigger): without it the
# loader would read the host's /etc/ld.so.cache through the sysroot fallback (harmless, its
# x86_64 entries are ignored) and then search every directory. The arm64 ldconfig is static;
# qemu-aarch64-static runs it, `-r` chroots into the root (needs root).
if command -v qemu-aarch64-static >/dev/null && [ "$(id -u)" -eq 0 ]; then
    qemu-aarch64-static "$NEW/usr/sbin/ldconfig" -r "$NEW" >"$TMP/ldconfig.log" 2>&1 ||
        log "ldconfig failed (the loader then searches its default directories): $(tail -2 "$TMP/ldconfig.log")"
else
    log "no ld.so.cache (needs root and qemu-aarch64-static); the loader searches its default directories"
fi

# Precompile the Python standard library. The .pyc format depends only on the Python
# version, so a host python3.11 does it (in parallel, ~10 s); otherwise the guest's own
# python3.11 under qemu-aarch64-static does (slower). Either way the .pyc files record the
# guest paths (/usr/lib/python3.11/...), not this build directory.
PY_DIRS=("$NEW/usr/lib/python3.11" "$NEW/usr/lib/python3/dist-packages")
host_py=""
for py in python3.11 python3; do
    if command -v "$py" >/dev/null &&
        [ "$("$py" -c 'import sys; print(sys.version_info[:2] == (3, 11))' 2>/dev/null)" = True ]; then
        host_py="$py"
        break
    fi
done
if [ -n "$host_py" ]; then
    log "precompiling the Python standard library ($host_py on the host)"
    "$host_py" -m compileall -q -j 0 -s "$NEW" -p / "${PY_DIRS[@]}" >"$TMP/pyc.log" 2>&1 ||
        log "compileall reported errors (some test modules do not compile; harmless): $(tail -2 "$TMP/pyc.log")"
elif command -v qemu-aarch64-static >/dev/null; then
    log "precompiling the Python standard library (the guest's python3.11 under qemu-aarch64-static)"
    qemu-aarch64-static -L "$NEW" "$NEW/usr/bin/python3.11" -m compileall -q -s "$NEW" -p / \
        "${PY_DIRS[@]}" >"$TMP/pyc.log" 2>&1 ||
        log "compileall reported errors (harmless): $(tail -2 "$TMP/pyc.log")"
else
    log "no python3.11 on the host and no qemu-aarch64-static: the Python standard library is not precompiled (python3 still works, each start compiles what it imports)"
fi

echo "$want_stamp" >"$NEW/.elfuse-rootfs-stamp"
rm -rf "$OUT"
mv "$NEW" "$OUT"
log "ready: $OUT (${#FILES[@]} packages, $(du -sh "$OUT" | cut -f1))"
echo "$OUT"
