//! Running the server: bind first, load the default model in the background, serve until SIGINT or
//! SIGTERM, then shut down gracefully.
//!
//! Binding before loading lets orchestrators see the port open at once and poll `/health`
//! (503 `loading`, then 200). On a signal the listener stops accepting, the engine stops taking
//! requests and gives running ones [`SHUTDOWN_GRACE_SECS`] to finish (then cancels them), and
//! open connections drain; the process then exits 0. A model that fails to load stops the
//! server with an error.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{HttpConfig, ServeOptions, SHUTDOWN_GRACE_SECS};
use crate::ids::unix_now;
use crate::pool::{ModelPool, PoolOptions};
use crate::state::AppState;

/// Why the server is stopping.
#[derive(Clone, Debug, PartialEq)]
enum Stop {
    Running,
    Signal,
    LoadFailed(String),
}

/// Builds a tokio runtime and runs [`serve`] on it (for the synchronous `owl` binary).
pub fn run(opts: ServeOptions) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("owl-http")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let r = rt.block_on(serve(opts));
    // A model still loading must not hold the exit up.
    rt.shutdown_timeout(Duration::from_secs(1));
    r
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves until a signal (Ok) or a failed model load (Err).
pub async fn serve(opts: ServeOptions) -> Result<()> {
    let listener = TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", opts.host, opts.port))?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(opts.port);
    let host = if opts.host.contains(':') {
        format!("[{}]", opts.host)
    } else {
        opts.host.clone()
    };
    eprintln!("owl serve: listening on http://{host}:{port}");

    let model_id = opts
        .default_model
        .clone()
        .unwrap_or_else(|| "owl".to_string());
    let created = opts
        .default_model
        .as_deref()
        .and_then(|m| opts.catalog.resolve(m).ok())
        .map_or_else(unix_now, |s| s.modified);
    let pool = ModelPool::new(
        PoolOptions {
            engine: opts.engine.clone(),
            keep_alive: opts.keep_alive,
            max_memory: opts.max_memory,
            default_model: opts.default_model.clone(),
        },
        Some(opts.catalog.clone()),
    );
    pool.spawn_reaper();
    let state = AppState::with_pool(
        HttpConfig {
            model_id: model_id.clone(),
            created,
            api_key: opts.api_key.clone(),
            cors_origins: opts.cors_origins.clone(),
        },
        pool.clone(),
    );
    let (stop_tx, mut stop_rx) = watch::channel(Stop::Running);

    // Load the default model in the background; requests wait for it, /health says 503.
    let load_stop = stop_tx.clone();
    let load_pool = pool.clone();
    let default = opts.default_model.clone();
    let adapters = opts.adapters.clone();
    let load_state = state.clone();
    tokio::spawn(async move {
        let Some(name) = default else {
            load_pool.set_ready();
            return;
        };
        match load_pool.preload(Some(&name), None).await {
            Ok(spec) => {
                eprintln!("owl serve: serving {} by default", spec.id);
                for (name, path) in adapters {
                    let shown = path.display().to_string();
                    if let Err(e) = crate::lora::register(&load_state, &name, path).await {
                        let why = format!("--lora {name}={shown}: {}", e.message);
                        let _ = load_stop.send(Stop::LoadFailed(why));
                        return;
                    }
                    eprintln!("owl serve: LoRA adapter {name} ({shown}) over {}", spec.id);
                }
                load_pool.set_ready();
            }
            Err(e) => {
                let _ = load_stop.send(Stop::LoadFailed(e.to_string()));
            }
        }
    });
    let sig_stop = stop_tx.clone();
    tokio::spawn(async move {
        signal().await;
        let _ = sig_stop.send(Stop::Signal);
    });

    let app = crate::router(state.clone());
    let mut graceful_rx = stop_rx.clone();
    let engine_state = state.clone();
    let (engine_done_tx, engine_done_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = graceful_rx.wait_for(|s| *s != Stop::Running).await;
        eprintln!("owl serve: shutting down");
        // Let running requests finish (their connections drain), then cancel the rest.
        tokio::task::spawn_blocking(move || {
            engine_state
                .pool()
                .shutdown(Duration::from_secs(SHUTDOWN_GRACE_SECS));
            let _ = engine_done_tx.send(());
        });
    });
    let server = tokio::spawn(async move { server.await });
    // Wait for the stop, then give the server the grace period plus a margin to drain.
    let _ = stop_rx.wait_for(|s| *s != Stop::Running).await;
    let why = stop_rx.borrow().clone();
    let drain = Duration::from_secs(SHUTDOWN_GRACE_SECS + 5);
    match tokio::time::timeout(drain, server).await {
        Ok(Ok(Err(e))) => eprintln!("owl serve: server error: {e}"),
        Ok(Err(e)) => eprintln!("owl serve: server task failed: {e}"),
        Err(_) => eprintln!(
            "owl serve: connections still open after {}s; closing",
            drain.as_secs()
        ),
        Ok(Ok(Ok(()))) => {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), engine_done_rx).await;
    match why {
        Stop::LoadFailed(e) => Err(anyhow::anyhow!("cannot load the model: {e}")),
        _ => {
            eprintln!("owl serve: stopped");
            Ok(())
        }
    }
}
