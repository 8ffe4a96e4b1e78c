//! `owl ps`: what a running `owl serve` has loaded (its `GET /api/ps`): name, size, and until
//! when each model stays. A plain HTTP/1.1 request over a socket: the command needs nothing
//! else from the network stack.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// Where the server listens, and its key.
pub struct PsArgs {
    pub host: String,
    pub port: u16,
    pub api_key: Option<String>,
}

pub fn run(a: PsArgs) -> Result<()> {
    let body = get(&a, "/api/ps")?;
    let v: Value = serde_json::from_str(&body).context("the server's /api/ps is not JSON")?;
    let models = v["models"]
        .as_array()
        .ok_or_else(|| anyhow!("the server's /api/ps has no `models` list"))?;
    if models.is_empty() {
        println!("no models loaded");
        return Ok(());
    }
    println!("{:<40} {:>10}  {:<12} UNTIL", "NAME", "SIZE", "QUANT");
    for m in models {
        let size = m["size"].as_u64().unwrap_or(0);
        println!(
            "{:<40} {:>10}  {:<12} {}",
            m["name"].as_str().unwrap_or("?"),
            format!("{:.1} MiB", size as f64 / (1 << 20) as f64),
            m["details"]["quantization_level"].as_str().unwrap_or(""),
            m["expires_at"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// The body of `GET path` (200 only).
fn get(a: &PsArgs, path: &str) -> Result<String> {
    let addr = format!("{}:{}", a.host, a.port);
    let mut s = TcpStream::connect(&addr)
        .with_context(|| format!("no owl serve at {addr} (start one, or give --host/--port)"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = a
        .api_key
        .as_deref()
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP reply from {addr}"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("{addr}{path} answered {status}: {}", body.trim());
    }
    Ok(body.to_string())
}
