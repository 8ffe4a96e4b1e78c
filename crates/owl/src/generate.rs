//! `owl run` and `owl chat`: open a model, render the conversation, stream the reply.
//!
//! Both run on the serving engine (`owl_engine`, one sequence): a turn is a `Request`
//! submitted to an in-process engine thread, and the reply is read from the same events the
//! server reads, so `owl run` and `owl serve` give the same tokens for the same request (same
//! sampling, stop strings, end-of-generation and context handling). `owl chat` keeps the
//! engine between turns; its prefix cache reuses the conversation's K/V rows, so a turn only
//! evaluates what is new (`--verbose` says how many prompt tokens were reused).

use std::io::{BufRead, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use owl_engine::{
    EngineConfig, Event, Finish, FinishReason, ModelBundle, Request, RunningModel, TokenLogprob,
};
use owl_grammar::{Constraint, TokenConstraint};
use owl_text::{ChatMessage, ChatPrompt, ReplySplitter, TemplateVars};
use serde_json::json;

use crate::cli::{ChatArgs, ConstraintArgs, LoraArgs, ModelArgs, RunArgs, SamplingArgs, SpecArgs};

/// The name `--lora`'s adapter is registered under in the command line's engine.
const CLI_ADAPTER: &str = "lora";

/// A started model, what its name carries, and the adapter its requests use.
struct Opened {
    m: RunningModel,
    defaults: owl_store::Defaults,
    /// The registered name of the LoRA adapter every request uses ([`CLI_ADAPTER`]).
    adapter: Option<String>,
}

/// Opens the model named by `args` and starts a one-sequence engine for it, applying the
/// defaults its name carries (a derived or Ollama model's params fill the unset `sampling`
/// flags, its template replaces the file's); returns them for the system prompt.
/// The model's own LoRA adapter (a derived model's `--adapter`, at scale 1) or `--lora`'s is
/// loaded too; both at once is an error, as a request runs with one adapter.
fn open(
    args: &ModelArgs,
    sampling: &mut SamplingArgs,
    lora: &LoraArgs,
    spec: &SpecArgs,
) -> Result<Opened> {
    let r = crate::models::resolve(args.model.as_deref())?;
    let adapter = crate::models::pick_adapter(&r, lora)?;
    let num_ctx = crate::defaults::apply(&r, sampling)?;
    let ctx = args.ctx_size.or(num_ctx);
    let mut bundle = ModelBundle::open(&r.path, &args.open_options(ctx)?)?;
    if bundle.runner.model.is_encoder() {
        bail!(
            "'{}' is an embedding model (an encoder): it does not generate text; use `owl embed` or `owl rerank`",
            r.name
        );
    }
    if let Some(source) = &r.defaults.template {
        let t = owl_text::ChatTemplate::with_source(&bundle.runner.file, source).map_err(|e| {
            anyhow::anyhow!(
                "model '{}': its chat template does not compile: {}",
                r.name,
                crate::models::first_line(&e.to_string())
            )
        })?;
        bundle.template = Some(t);
    }
    let n_ctx = bundle.n_ctx;
    let mut cfg = EngineConfig::single(n_ctx);
    cfg.spec = spec.config()?;
    let draft = match &spec.draft_model {
        Some(name) => {
            let d = crate::models::resolve(Some(name))?;
            let mut o = args.open_options(Some(n_ctx))?;
            // `--quantize` applies to a draft model only where it can (not an error when it is
            // quantized already).
            if let Some(q) = o.quantize.as_mut() {
                q.strict = false;
            }
            let b = ModelBundle::open(&d.path, &o)
                .with_context(|| format!("cannot open the draft model '{}'", d.name))?;
            Some(b)
        }
        None => None,
    };
    let m = bundle.start_with_draft(cfg, draft)?;
    if let Some((path, scale)) = &adapter {
        let loaded = m
            .engine
            .load_adapter(CLI_ADAPTER, path, *scale)?
            .blocking_recv()
            .map_err(|_| anyhow::anyhow!("the engine stopped"))?;
        loaded?;
    }
    Ok(Opened {
        m,
        defaults: r.defaults,
        adapter: adapter.map(|_| CLI_ADAPTER.to_string()),
    })
}

/// The engine request for `prompt` with the command line's settings.
fn request(
    prompt: &ChatPrompt,
    s: &SamplingArgs,
    constraint: Option<TokenConstraint>,
    adapter: Option<String>,
) -> Result<Request> {
    let sampling = s.params();
    sampling.validate().context("invalid sampling option")?;
    Ok(Request {
        prompt: prompt.ids.clone(),
        max_tokens: s.max_tokens(),
        sampling,
        stop: s.stop.clone(),
        stop_at_eog: !s.ignore_eos,
        logprobs: s.logprobs.map(usize::from),
        prompt_logprobs: false,
        render_special: prompt.needs_special_tokens(),
        constraint,
        adapter,
    })
}

/// The constraint the command line asks for, read and compiled for `m`'s vocabulary.
fn constraint(m: &RunningModel, a: &ConstraintArgs) -> Result<Option<TokenConstraint>> {
    let c = if let Some(js) = &a.json_schema {
        let text = if js.trim_start().starts_with('{') {
            js.clone()
        } else {
            std::fs::read_to_string(js).with_context(|| format!("cannot read {js}"))?
        };
        let schema: serde_json::Value =
            serde_json::from_str(&text).context("--json-schema is not valid JSON")?;
        Constraint::JsonSchema(schema)
    } else if let Some(r) = &a.regex {
        Constraint::Regex(r.clone())
    } else if let Some(path) = &a.grammar {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Constraint::Lark(text)
    } else {
        return Ok(None);
    };
    let grammars = m.grammars()?;
    let compiled = grammars
        .compile(&c)
        .with_context(|| format!("invalid --{}", flag_of(&c)))?;
    Ok(Some(compiled))
}

fn flag_of(c: &Constraint) -> &'static str {
    match c {
        Constraint::Regex(_) => "regex",
        Constraint::Lark(_) => "grammar",
        _ => "json-schema",
    }
}

/// Generates a reply to `prompt_ids`, streaming text to `out`; returns the text and stats.
/// How a reasoning model's thinking is shown.
#[derive(Clone, Copy)]
pub struct ThinkingDisplay {
    pub hide: bool,
}

/// Where the reply goes: the answer to `out`; a reasoning model's thinking dimmed on `out`
/// when it is a terminal, else to stderr (so a pipe gets the answer only), or nowhere.
struct ReplySink<'a> {
    out: &'a mut dyn Write,
    splitter: Option<ReplySplitter>,
    show: bool,
    to_terminal: bool,
    in_dim: bool,
}

impl ReplySink<'_> {
    fn write(&mut self, piece: &str, answer: &mut String) -> std::io::Result<()> {
        let (reasoning, content) = match self.splitter.as_mut() {
            None => (String::new(), piece.to_string()),
            Some(sp) => sp.push(piece),
        };
        self.emit(&reasoning, &content, answer)
    }

    fn finish(&mut self, rest: &str, answer: &mut String) -> std::io::Result<()> {
        self.write(rest, answer)?;
        if let Some(sp) = self.splitter.as_mut() {
            let (r, c) = sp.finish();
            self.emit(&r, &c, answer)?;
        }
        if self.in_dim {
            self.out.write_all(DIM_OFF.as_bytes())?;
            self.in_dim = false;
        }
        Ok(())
    }

    fn emit(&mut self, reasoning: &str, content: &str, answer: &mut String) -> std::io::Result<()> {
        if !reasoning.is_empty() && self.show {
            if self.to_terminal {
                if !self.in_dim {
                    self.out.write_all(DIM_ON.as_bytes())?;
                    self.in_dim = true;
                }
                self.out.write_all(reasoning.as_bytes())?;
            } else {
                let mut e = std::io::stderr();
                e.write_all(reasoning.as_bytes())?;
            }
        }
        if !content.is_empty() {
            if self.in_dim {
                self.out.write_all(format!("{DIM_OFF}\n").as_bytes())?;
                self.in_dim = false;
            }
            answer.push_str(content);
            self.out.write_all(content.as_bytes())?;
        }
        self.out.flush()
    }
}

const DIM_ON: &str = "\x1b[2m";
const DIM_OFF: &str = "\x1b[0m";

/// What one turn did, for `--verbose`.
struct TurnStats {
    finish: Finish,
    /// Submission to the first token (prompt evaluation and the first sample).
    prompt_time: Duration,
    /// First token to the end.
    gen_time: Duration,
    /// Generated tokens with their logprobs (when asked for).
    logprobs: Vec<(u32, TokenLogprob)>,
}

/// How a turn is written: the reply as text (thinking per `ThinkingDisplay`), or every event
/// as a JSON line.
#[derive(Clone, Copy)]
struct Output {
    thinking: ThinkingDisplay,
    json: bool,
}

/// Submits `prompt` and streams the reply to `out`; returns the answer (without a reasoning
/// model's thinking) and what the turn did.
#[allow(clippy::too_many_arguments)]
fn stream_reply(
    m: &RunningModel,
    prompt: &ChatPrompt,
    s: &SamplingArgs,
    constraint: Option<TokenConstraint>,
    adapter: Option<&str>,
    how: Output,
    out: &mut dyn Write,
    to_terminal: bool,
) -> Result<(String, TurnStats)> {
    let t0 = Instant::now();
    let adapter = adapter.map(str::to_string);
    let mut stream = m
        .engine
        .submit(request(prompt, s, constraint, adapter)?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut sink = ReplySink {
        out,
        splitter: prompt.splitter.clone(),
        show: !how.thinking.hide,
        to_terminal,
        in_dim: false,
    };
    let mut text = String::new();
    // Everything the engine released, for the JSON summary.
    let mut raw = String::new();
    let mut first: Option<Instant> = None;
    let mut logprobs = Vec::new();
    let finish = loop {
        let Some(ev) = stream.next_blocking() else {
            bail!("the engine stopped before the reply finished");
        };
        let written = match ev {
            Event::Token {
                id,
                text: piece,
                logprob,
            } => {
                first.get_or_insert_with(Instant::now);
                raw.push_str(&piece);
                let r = if how.json {
                    json_line(sink.out, &token_json(m, id, &piece, logprob.as_ref()))
                } else {
                    sink.write(&piece, &mut text)
                };
                if let Some(lp) = logprob {
                    logprobs.push((id, lp));
                }
                r
            }
            Event::Done(f) => {
                raw.push_str(&f.text);
                let r = if how.json {
                    Ok(())
                } else {
                    sink.finish(&f.text, &mut text)
                };
                if let Err(e) = r {
                    write_failed(e)?;
                }
                break f;
            }
        };
        if let Err(e) = written {
            // Dropping the stream cancels the request; a closed pipe is a normal end.
            drop(stream);
            write_failed(e)?;
            return Ok((text, no_stats(prompt)));
        }
    };
    match &finish.reason {
        FinishReason::Error(e) => bail!("generation failed: {e}"),
        FinishReason::Cancelled => bail!("generation was cancelled"),
        FinishReason::Stop | FinishReason::Length => {}
    }
    let end = Instant::now();
    let first = first.unwrap_or(end);
    if how.json {
        let (reasoning, content) = match prompt.splitter.clone() {
            None => (None, raw),
            Some(mut sp) => {
                let (r, c) = sp.split_whole(&raw);
                (Some(r), c)
            }
        };
        json_line(
            sink.out,
            &json!({
                "finish_reason": finish_name(&finish.reason),
                "content": content,
                "reasoning_content": reasoning,
                "usage": {
                    "prompt_tokens": finish.prompt_tokens,
                    "cached_tokens": finish.cached_tokens,
                    "completion_tokens": finish.completion_tokens,
                },
            }),
        )
        .or_else(write_failed)?;
        text = content;
    }
    Ok((
        text,
        TurnStats {
            prompt_time: first - t0,
            gen_time: end - first,
            finish,
            logprobs,
        },
    ))
}

/// Stats of a turn cut short by a closed output.
fn no_stats(prompt: &ChatPrompt) -> TurnStats {
    TurnStats {
        finish: Finish {
            reason: FinishReason::Cancelled,
            text: String::new(),
            prompt_tokens: prompt.ids.len(),
            cached_tokens: 0,
            completion_tokens: 0,
            prompt_logprobs: None,
        },
        prompt_time: Duration::ZERO,
        gen_time: Duration::ZERO,
        logprobs: Vec::new(),
    }
}

/// A broken pipe ends the output quietly; other write errors are errors.
fn write_failed(e: std::io::Error) -> Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e).context("writing the reply")
    }
}

fn json_line(out: &mut dyn Write, v: &serde_json::Value) -> std::io::Result<()> {
    writeln!(out, "{v}")?;
    out.flush()
}

fn finish_name(r: &FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::Cancelled => "cancelled",
        FinishReason::Error(_) => "error",
    }
}

fn token_json(
    m: &RunningModel,
    id: u32,
    text: &str,
    lp: Option<&TokenLogprob>,
) -> serde_json::Value {
    let piece = |t: u32| m.tokenizer.decode(&[t], true);
    let mut v = json!({ "token": id, "text": text });
    if let Some(lp) = lp {
        v["logprob"] = json!(lp.logprob);
        v["top_logprobs"] = lp
            .top
            .iter()
            .map(|&(t, l)| json!({ "token": t, "text": piece(t), "logprob": l }))
            .collect();
    }
    v
}

fn report(m: &RunningModel, st: &TurnStats) {
    let f = &st.finish;
    let pt = st.prompt_time.as_secs_f64();
    let gt = st.gen_time.as_secs_f64();
    let evaluated = f.prompt_tokens - f.cached_tokens;
    eprintln!(
        "owl: prompt {} tokens ({} reused) in {:.3}s = {:.1} tok/s; generated {} tokens in {:.3}s = {:.1} tok/s; stop: {}",
        f.prompt_tokens,
        f.cached_tokens,
        pt,
        evaluated as f64 / pt.max(1e-9),
        f.completion_tokens,
        gt,
        f.completion_tokens.saturating_sub(1) as f64 / gt.max(1e-9),
        finish_name(&f.reason)
    );
    for (id, lp) in &st.logprobs {
        let alts: Vec<String> = lp
            .top
            .iter()
            .map(|&(t, l)| format!("{:?} {l:.3}", m.tokenizer.decode(&[t], true)))
            .collect();
        eprintln!(
            "owl: {:>6} {:<16} {:>8.3}  [{}]",
            id,
            format!("{:?}", m.tokenizer.decode(&[*id], true)),
            lp.logprob,
            alts.join(", ")
        );
    }
}

fn read_prompt(arg: Option<&str>) -> Result<String> {
    match arg {
        Some("-") => read_stdin(),
        Some(p) => Ok(p.to_string()),
        None if !std::io::stdin().is_terminal() => read_stdin(),
        None => bail!("no prompt given: `owl run \"your prompt\"`, or `-` to read it from stdin"),
    }
}

fn read_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the prompt from stdin")?;
    Ok(s)
}

fn render(m: &RunningModel, messages: &[ChatMessage], no_thinking: bool) -> Result<ChatPrompt> {
    let Some(t) = &m.template else {
        bail!("this model has no chat template; use `owl run --raw` for plain text completion");
    };
    let mut vars = TemplateVars::new();
    if no_thinking {
        vars.insert("enable_thinking".into(), serde_json::Value::Bool(false));
    }
    Ok(ChatPrompt::render(t, &m.tokenizer, messages, &vars)?)
}

pub fn run(mut a: RunArgs) -> Result<()> {
    let prompt = a.take_prompt()?;
    let prompt = read_prompt(prompt.as_deref())?;
    a.sampling
        .params()
        .validate()
        .context("invalid sampling option")?;
    let Opened {
        m,
        defaults,
        adapter,
    } = open(&a.model, &mut a.sampling, &a.lora, &a.spec)?;
    let system = a.system.clone().or(defaults.system);
    let prompt = if a.raw {
        ChatPrompt {
            ids: m.tokenizer.encode(&prompt, true, false)?,
            splitter: None,
        }
    } else {
        let mut msgs = Vec::new();
        if let Some(s) = &system {
            msgs.push(ChatMessage::new("system", s.clone()));
        }
        msgs.push(ChatMessage::new("user", prompt));
        render(&m, &msgs, a.thinking.no_thinking)?
    };
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = stdout.lock();
    let how = Output {
        thinking: a.thinking.display(),
        json: a.sampling.json,
    };
    let c = constraint(&m, &a.constraint)?;
    let (text, stats) = stream_reply(
        &m,
        &prompt,
        &a.sampling,
        c,
        adapter.as_deref(),
        how,
        &mut out,
        tty,
    )?;
    if !how.json && !text.ends_with('\n') {
        out.write_all(b"\n").ok();
    }
    out.flush().ok();
    if a.model.verbose {
        report(&m, &stats);
    }
    Ok(())
}

pub fn chat(mut a: ChatArgs) -> Result<()> {
    if let Some(name) = a.name.take() {
        crate::cli::merge_model(&mut a.model, name)?;
    }
    a.sampling
        .params()
        .validate()
        .context("invalid sampling option")?;
    let Opened {
        m,
        defaults,
        adapter,
    } = open(&a.model, &mut a.sampling, &a.lora, &a.spec)?;
    a.system = a.system.take().or(defaults.system);
    if m.template.is_none() {
        bail!("this model has no chat template; use `owl run --raw` for plain text completion");
    }
    let system: Vec<ChatMessage> = a
        .system
        .iter()
        .map(|s| ChatMessage::new("system", s.clone()))
        .collect();
    let mut history = system.clone();
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "owl: chatting (context {}). /reset clears history, /bye or Ctrl-D leaves.",
            m.n_ctx()
        );
    }
    let how = Output {
        thinking: a.thinking.display(),
        json: a.sampling.json,
    };
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let stdout = std::io::stdout();
    loop {
        if interactive {
            eprint!(">>> ");
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading input")?;
        let msg = line.trim();
        match msg {
            "" => continue,
            "/bye" | "/exit" | "/quit" => break,
            "/reset" | "/clear" => {
                history = system.clone();
                eprintln!("owl: history cleared");
                continue;
            }
            _ => {}
        }
        history.push(ChatMessage::new("user", msg.to_string()));
        let prompt = render(&m, &history, a.thinking.no_thinking)?;
        if prompt.ids.len() >= m.n_ctx() {
            history.pop();
            eprintln!(
                "owl: the conversation ({} tokens) no longer fits the context ({}); /reset to start over",
                prompt.ids.len(),
                m.n_ctx()
            );
            continue;
        }
        let tty = stdout.is_terminal();
        let mut out = stdout.lock();
        let (text, stats) = stream_reply(
            &m,
            &prompt,
            &a.sampling,
            None,
            adapter.as_deref(),
            how,
            &mut out,
            tty,
        )?;
        if !how.json {
            out.write_all(b"\n").ok();
        }
        out.flush().ok();
        history.push(ChatMessage::new("assistant", text.trim().to_string()));
        if a.model.verbose {
            report(&m, &stats);
        }
    }
    Ok(())
}
