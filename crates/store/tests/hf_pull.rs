//! `pull hf:…` against a local HTTP server speaking the Hub's protocol (the endpoints the
//! `hf-hub` client calls: repository info with `siblings`, and `resolve` with etag,
//! `x-repo-commit`, `content-range` and Range requests), serving repositories built from the
//! tiny fixtures. Checks the download is byte-identical, lands in the HF cache where `list`
//! and `resolve` find it, resumes a partial download, and sends the token.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use owl_store::{Hub, ModelFormat, PullEvent, Roots, Store};
use sha2::{Digest, Sha256};

const REV: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/arch")
            .join(name),
    )
    .expect("fixture")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    range: Option<String>,
    auth: Option<String>,
}

type Repos = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

struct TestHub {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// When set, the next download stops halfway (the connection drops).
    cut: Arc<AtomicBool>,
}

fn serve(repos: Repos) -> TestHub {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let cut = Arc::new(AtomicBool::new(false));
    let cut_flag = Arc::clone(&cut);
    let repos = Arc::new(repos);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let repos = Arc::clone(&repos);
            let log = Arc::clone(&log);
            let cut = Arc::clone(&cut_flag);
            std::thread::spawn(move || {
                let _ = handle(conn, &repos, &log, &cut);
            });
        }
    });
    TestHub { url, seen, cut }
}

fn handle(
    conn: TcpStream,
    repos: &Repos,
    log: &Mutex<Vec<Seen>>,
    cut: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut range = None;
    let mut auth = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    log.lock().expect("log").push(Seen {
        path: path.clone(),
        range: range.clone(),
        auth,
    });
    let mut out = conn;
    let reply = |out: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]| {
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if method != "HEAD" {
            out.write_all(body)?;
        }
        out.flush()
    };
    // GET /api/models/{org}/{repo}/revision/{rev}
    if let Some(rest) = path.strip_prefix("/api/models/") {
        if let Some((repo, _rev)) = rest.split_once("/revision/") {
            if let Some(files) = repos.get(repo) {
                let siblings: Vec<serde_json::Value> = files
                    .keys()
                    .map(|f| serde_json::json!({ "rfilename": f }))
                    .collect();
                let body = serde_json::json!({ "id": repo, "sha": REV, "siblings": siblings });
                return reply(
                    &mut out,
                    "200 OK",
                    &[("Content-Type".into(), "application/json".into())],
                    body.to_string().as_bytes(),
                );
            }
        }
        return reply(&mut out, "404 Not Found", &[], b"{}");
    }
    // GET|HEAD /{org}/{repo}/resolve/{rev}/{file}
    if let Some((repo, rest)) = path[1..].split_once("/resolve/") {
        let file = rest.split_once('/').map(|(_, f)| f).unwrap_or("");
        if let Some(bytes) = repos.get(repo).and_then(|r| r.get(file)) {
            let total = bytes.len();
            let mut headers = vec![
                ("ETag".to_string(), format!("\"{}\"", sha256_hex(bytes))),
                ("X-Repo-Commit".to_string(), REV.to_string()),
                ("Accept-Ranges".to_string(), "bytes".to_string()),
            ];
            let Some(r) = range.as_deref().and_then(|r| r.strip_prefix("bytes=")) else {
                return reply(&mut out, "200 OK", &headers, bytes);
            };
            let (a, b) = r.split_once('-').unwrap_or((r, ""));
            let start: usize = a.parse().unwrap_or(0);
            let end: usize = b.parse().map_or(total - 1, |e: usize| e.min(total - 1));
            headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{end}/{total}"),
            ));
            let whole_rest = end + 1 - start > 1;
            if whole_rest && cut.swap(false, Ordering::SeqCst) {
                // Promise the rest, send half of it, drop the connection.
                let mut head = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nConnection: close\r\n",
                    end + 1 - start
                );
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                out.write_all(head.as_bytes())?;
                out.write_all(&bytes[start..start + (end + 1 - start) / 2])?;
                out.flush()?;
                return out.shutdown(std::net::Shutdown::Both);
            }
            return reply(
                &mut out,
                "206 Partial Content",
                &headers,
                &bytes[start..=end],
            );
        }
    }
    reply(&mut out, "404 Not Found", &[], b"not found")
}

fn store(tmp: &Path, hub: &TestHub, token: Option<&str>) -> (Store, PathBuf) {
    let hf = tmp.join("hf").join("hub");
    let s = Store::new(Roots {
        owl: tmp.join("owl"),
        ollama: None,
        hf: Some(hf.clone()),
    })
    .with_hub(Hub {
        endpoint: Some(hub.url.clone()),
        token: token.map(str::to_string),
    });
    (s, hf)
}

fn repos() -> Repos {
    let mut r = Repos::new();
    r.insert(
        "org/tiny-GGUF".into(),
        BTreeMap::from([
            (
                "tiny-llama-Q8_0.gguf".into(),
                fixture("tiny-llama-3l-q8.gguf"),
            ),
            (
                "tiny-qwen2-Q4_1.gguf".into(),
                fixture("tiny-qwen2-1l-q4_1.gguf"),
            ),
            ("README.md".into(), b"# tiny".to_vec()),
        ]),
    );
    r.insert(
        "org/st".into(),
        BTreeMap::from([
            ("config.json".into(), b"{\"model_type\":\"llama\"}".to_vec()),
            ("model.safetensors".into(), vec![7u8; 1000]),
            ("tokenizer.json".into(), b"{}".to_vec()),
            ("pytorch_model.bin".into(), vec![1u8; 10]),
        ]),
    );
    r
}

#[test]
fn pulls_a_gguf_by_quant_into_the_hf_cache_resuming_a_partial_download() {
    let hub = serve(repos());
    let tmp = tempfile::tempdir().expect("tempdir");
    let (s, hf) = store(tmp.path(), &hub, Some("secret-token"));
    let want = fixture("tiny-llama-3l-q8.gguf");
    // An earlier, interrupted download left the first half.
    let blobs = hf.join("models--org--tiny-GGUF").join("blobs");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let half = want.len() / 2;
    std::fs::write(
        blobs.join(format!("{}.part", sha256_hex(&want))),
        &want[..half],
    )
    .expect("partial");

    let mut events = Vec::new();
    let r = s
        .pull("hf:org/tiny-GGUF:q8_0", &mut |e| events.push(e.clone()))
        .expect("pull");
    assert_eq!(
        std::fs::read(&r.path).expect("read"),
        want,
        "byte-identical"
    );
    assert!(r.path.starts_with(&hf), "{}", r.path.display());
    assert_eq!(r.name, "hf:org/tiny-GGUF:tiny-llama-Q8_0.gguf");
    let seen = hub.seen.lock().expect("log").clone();
    assert!(
        seen.iter()
            .any(|q| q.range.as_deref() == Some(&format!("bytes={half}-"))),
        "resumed from byte {half}: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|q| q.auth.as_deref() == Some("Bearer secret-token")),
        "token sent: {seen:?}"
    );
    assert!(
        !seen.iter().any(|q| q.path.contains("Q4_1")),
        "only the chosen file: {seen:?}"
    );
    match events.last() {
        Some(PullEvent::Progress {
            completed, total, ..
        }) => assert_eq!((*completed, *total), (want.len() as u64, want.len() as u64)),
        other => panic!("last event {other:?}"),
    }

    // Found in place by the cache scan.
    assert_eq!(
        s.resolve("hf:org/tiny-GGUF:Q8_0").expect("resolve").path,
        r.path
    );
    assert_eq!(
        s.resolve("hf:org/tiny-GGUF").expect("one gguf cached").path,
        r.path
    );
    let list = s.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].quant.as_deref(), Some("Q8_0"));
    assert_eq!(list[0].family.as_deref(), Some("llama"));

    // A second pull downloads nothing.
    let before = hub.seen.lock().expect("log").len();
    let again = s.pull("hf:org/tiny-GGUF:Q8_0", &mut |_| {}).expect("again");
    assert_eq!(again.path, r.path);
    let after = hub.seen.lock().expect("log").clone();
    assert!(
        after[before..].iter().all(|q| q.path.starts_with("/api/")),
        "{:?}",
        &after[before..]
    );

    // Several GGUFs and no choice: a clear error listing them.
    let e = s
        .pull("hf:org/tiny-GGUF", &mut |_| {})
        .expect_err("ambiguous");
    assert!(e.to_string().contains("tiny-qwen2-Q4_1.gguf"), "{e}");
    let e = s.pull("hf:org/missing", &mut |_| {}).expect_err("404");
    assert!(e.to_string().contains("hf:org/missing"), "{e}");
}

#[test]
fn pulls_a_safetensors_repository_as_a_directory() {
    let hub = serve(repos());
    let tmp = tempfile::tempdir().expect("tempdir");
    let (s, hf) = store(tmp.path(), &hub, None);
    let r = s.pull("hf:org/st", &mut |_| {}).expect("pull");
    assert_eq!(
        r.path,
        hf.join("models--org--st").join("snapshots").join(REV)
    );
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(r.path.join(f).is_file(), "{f}");
    }
    assert!(!r.path.join("pytorch_model.bin").exists());
    let list = s.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "hf:org/st");
    assert_eq!(list[0].format, ModelFormat::SafetensorsDir);
    assert_eq!(s.resolve("hf:org/st").expect("runnable").path, r.path);
}

#[test]
fn a_download_cut_off_halfway_continues_where_it_stopped() {
    let hub = serve(repos());
    hub.cut.store(true, Ordering::SeqCst);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (s, _) = store(tmp.path(), &hub, None);
    let want = fixture("tiny-qwen2-1l-q4_1.gguf");
    let r = s
        .pull("hf:org/tiny-GGUF:tiny-qwen2-Q4_1.gguf", &mut |_| {})
        .expect("pull");
    assert_eq!(
        std::fs::read(&r.path).expect("read"),
        want,
        "byte-identical"
    );
    assert!(
        !hub.cut.load(Ordering::SeqCst),
        "the first download was cut"
    );
    let half = want.len() / 2;
    let seen = hub.seen.lock().expect("log").clone();
    assert!(
        seen.iter()
            .any(|q| q.range.as_deref() == Some(&format!("bytes={half}-"))),
        "continued from byte {half}: {seen:?}"
    );
}
