//! Real networked programs from the Debian 12 arm64 root (`scripts/rootfs.sh`) under
//! `elfuse --sysroot ROOT`: python3's asyncio, http.server with urllib, socketpair and
//! multiprocessing.Pipe across fork, busybox nc and ip, curl, and bash's "started by a
//! network daemon?" check. Compared with `qemu-aarch64-static -L ROOT` where qemu runs
//! them. Every server binds 127.0.0.1, port 0, and ends by itself (host-side servers
//! serve one connection, with timeouts).

mod common;

use common::rootfs::{elfuse_in, rootfs, run_real, strings, text};
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

const PY_ASYNCIO: &str = "\
import asyncio
async def handle(r, w):
    data = await r.read(100)
    w.write(data.upper())
    await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(handle, '127.0.0.1', 0)
    port = srv.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection('127.0.0.1', port)
    w.write(b'hello asyncio')
    await w.drain()
    print((await r.read(100)).decode())
    w.close()
    srv.close()
    await srv.wait_closed()
asyncio.run(main())
";

#[test]
fn python3_asyncio_echo() {
    let Some(root) = rootfs() else { return };
    let out = run_real(
        &root,
        "/usr/bin/python3",
        &strings(&["-c", PY_ASYNCIO]),
        b"",
        true,
    );
    assert_eq!(text(out), "HELLO ASYNCIO\n");
}

const PY_HTTP: &str = "\
import http.server, threading, urllib.request
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'path=' + self.path.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
t = threading.Thread(target=s.serve_forever, kwargs={'poll_interval': 0.05})
t.start()
r = urllib.request.urlopen('http://127.0.0.1:%d/x?y=1' % s.server_port, timeout=30)
print(r.status, r.read().decode())
s.shutdown()
t.join()
";

#[test]
fn python3_http_server_and_urllib() {
    let Some(root) = rootfs() else { return };
    let out = run_real(
        &root,
        "/usr/bin/python3",
        &strings(&["-c", PY_HTTP]),
        b"",
        true,
    );
    assert_eq!(text(out), "200 path=/x?y=1\n");
}

const PY_FORK: &str = "\
import multiprocessing as mp, os, socket
a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    a.close()
    b.sendall(b'child says ' + b.recv(16))
    os._exit(0)
b.close()
a.sendall(b'hi')
print(a.recv(64).decode())
os.waitpid(pid, 0)
def child(c):
    c.send(c.recv() * 2)
    c.close()
ctx = mp.get_context('fork')
x, y = ctx.Pipe()
p = ctx.Process(target=child, args=(y,))
p.start()
x.send([1, 'two'])
print(x.recv())
p.join()
print(p.exitcode)
";

#[test]
fn python3_socketpair_and_multiprocessing_pipe_across_fork() {
    let Some(root) = rootfs() else { return };
    let out = run_real(
        &root,
        "/usr/bin/python3",
        &strings(&["-c", PY_FORK]),
        b"",
        true,
    );
    assert_eq!(text(out), "child says hi\n[1, 'two', 1, 'two']\n0\n");
}

/// A host-side server on 127.0.0.1:0 for one connection: `serve` gets the stream.
fn one_shot_server(
    serve: impl FnOnce(std::net::TcpStream) + Send + 'static,
) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        l.set_nonblocking(false).unwrap();
        // The listener is dropped (the server stops) after one connection or 60 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        l.set_nonblocking(true).unwrap();
        loop {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    serve(s);
                    return;
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => return,
            }
        }
    });
    (port, h)
}

#[test]
fn busybox_nc_talks_to_a_local_server() {
    let Some(root) = rootfs() else { return };
    let (port, h) = one_shot_server(|mut s| {
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        s.write_all(format!("pong: {line}").as_bytes()).unwrap();
    });
    let args = strings(&["nc", "127.0.0.1", &port.to_string()]);
    let out = run_real(&root, "/usr/bin/busybox", &args, b"ping\n", false);
    h.join().unwrap();
    assert_eq!(text(out), "pong: ping\n");
}

#[test]
fn curl_fetches_from_a_local_server() {
    let Some(root) = rootfs() else { return };
    let (port, h) = one_shot_server(|mut s| {
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        assert!(req.starts_with(b"GET /hello HTTP/1.1\r\n"));
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nhello, curl\n")
            .unwrap();
    });
    let url = format!("http://127.0.0.1:{port}/hello");
    let out = run_real(&root, "/usr/bin/curl", &strings(&["-sS", &url]), b"", false);
    h.join().unwrap();
    assert_eq!(text(out), "hello, curl\n");
}

#[test]
fn busybox_ip_lists_the_loopback_address_and_routes() {
    let Some(root) = rootfs() else { return };
    let args = strings(&["ip", "-4", "-o", "addr", "show", "lo"]);
    let out = text(run_real(&root, "/usr/bin/busybox", &args, b"", true));
    assert!(out.contains("inet 127.0.0.1/8"), "{out}");
    // The routing table through netlink (the host's, as under qemu).
    let args = strings(&["ip", "route", "show", "table", "local"]);
    let out = text(run_real(&root, "/usr/bin/busybox", &args, b"", true));
    assert!(out.contains("127.0.0.1 dev lo"), "{out}");
}

/// bash sources ~/.bashrc for `bash -c` only when started by a network daemon, which it
/// decides with getpeername(stdin): ENOTSOCK says no (ENOSYS used to say yes).
#[test]
fn bash_c_is_not_taken_for_a_network_login() {
    let Some(root) = rootfs() else { return };
    let home = TempDir::new();
    std::fs::write(home.path().join(".bashrc"), "echo SOURCED-BASHRC\n").unwrap();
    let mut cmd = elfuse_in(&root, "/bin/bash", &strings(&["-c", "echo hi"]));
    cmd.env("HOME", home.path()).env_remove("SHLVL");
    let out = run(cmd, b"");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(out.stdout_str(), "hi\n", "{}", out.describe());
}
