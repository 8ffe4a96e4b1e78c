//! `owl`: run open-weight language models on your own CPU.
//!
//! The binary is a thin layer over the library crates: it parses arguments, resolves models in
//! the store, and wires tokenizer, chat template, engine session and sampler together. stdout
//! carries only generated text, so `owl run` pipes cleanly; everything else goes to stderr.

mod bench;
mod cli;
mod defaults;
mod embed;
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
    if let Err(e) = cli::dispatch(args) {
        eprintln!("owl: error: {e:#}");
        std::process::exit(1);
    }
}
