//! `owl`: run open-weight language models on your own CPU.
//!
//! The binary is a thin layer over the library crates: it parses arguments, resolves models in
//! the store, and wires tokenizer, chat template, engine session and sampler together. stdout
//! carries only generated text, so `owl run` pipes cleanly; everything else goes to stderr.

mod bench;
mod cli;
mod defaults;
mod embed;
mod finetune;
mod generate;
mod models;
mod perplexity;
mod ps;
mod quantize;
mod serve;
mod serve_catalog;
mod show;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if !matches!(args.command, cli::Command::Serve(_)) {
        quiet_broken_pipe();
    }
    if let Err(e) = cli::dispatch(args) {
        eprintln!("owl: error: {e:#}");
        std::process::exit(1);
    }
}

/// A command-line tool whose reader leaves (`owl show M | head`) should stop quietly, as `cat`
/// does, not panic in `println!`: restore SIGPIPE's default action, which Rust's runtime sets
/// to "ignore". The server keeps ignoring it, so a client that hangs up is a write error on
/// that connection, never the end of the process.
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with SIG_DFL installs no handler code; it runs before any other thread
    // exists, so nothing races with the change of disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
