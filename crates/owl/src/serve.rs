//! `owl serve`: resolve the model and options, then hand over to `owl-server`.

use anyhow::{bail, Result};
use owl_server::{ModelOptions, ServeOptions};

use crate::cli::ServeArgs;

pub fn run(a: ServeArgs) -> Result<()> {
    if a.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    if a.queue == 0 {
        bail!("--queue must be at least 1");
    }
    if a.ctx_size == Some(0) {
        bail!("--ctx-size must be at least 1");
    }
    for o in &a.cors_origins {
        let url_like = (o.starts_with("http://") || o.starts_with("https://"))
            && !o.ends_with('/')
            && o.bytes().all(|b| b.is_ascii_graphic());
        if o != "*" && !url_like {
            bail!("--cors-origin {o:?}: give a scheme and host like https://app.example (no path, no trailing slash), or *");
        }
    }
    let path = crate::models::resolve_path(a.model.as_deref())?;
    owl_server::run(ServeOptions {
        model: ModelOptions {
            path,
            threads: a.threads.unwrap_or_else(owl_engine::default_threads).max(1),
            ctx_size: a.ctx_size,
            parallel: a.parallel,
            queue: a.queue,
            kv_tokens: a.kv_tokens,
        },
        host: a.host,
        port: a.port,
        api_key: a.api_key.filter(|k| !k.is_empty()),
        cors_origins: a.cors_origins,
    })
}
