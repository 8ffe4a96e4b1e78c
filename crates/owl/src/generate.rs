//! `owl run` and `owl chat`: load a model, render the conversation, stream the reply.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use owl_engine::{GenerateParams, GenerateStats, Session};
use owl_gguf::GgufFile;
use owl_kernels::Kernels;
use owl_model::{LoadOptions, Runner};
use owl_text::{ChatMessage, ChatTemplate, ReplySplitter, StreamDecoder, Tokenizer};

use crate::cli::{ChatArgs, ModelArgs, RunArgs, SamplingArgs};
use crate::store;

/// Prompt tokens per prefill pass.
const N_BATCH: usize = 512;
/// Default context cap, so a 128k-context model does not reserve a huge cache by default.
const DEFAULT_CTX_CAP: usize = 4096;

/// Everything needed to generate with one model.
pub struct Loaded {
    pub session: Session,
    pub tokenizer: Tokenizer,
    pub template: Option<ChatTemplate>,
}

/// Physical cores this process may use (affinity and cgroup quota respected by std).
pub fn default_threads() -> usize {
    let avail = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let physical = physical_cores().unwrap_or(avail);
    physical.min(avail).max(1)
}

fn physical_cores() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mut cores = std::collections::HashSet::new();
    let mut phys = "";
    for line in info.lines() {
        if let Some(v) = line.strip_prefix("physical id") {
            phys = v.trim_start_matches([' ', '\t', ':']);
        } else if let Some(v) = line.strip_prefix("core id") {
            cores.insert((
                phys.to_string(),
                v.trim_start_matches([' ', '\t', ':']).to_string(),
            ));
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

pub fn load(args: &ModelArgs) -> Result<Loaded> {
    let path = store::resolve(args.model.as_deref(), true)?;
    load_path(&path, args)
}

pub fn load_path(path: &Path, args: &ModelArgs) -> Result<Loaded> {
    let file =
        Arc::new(GgufFile::open(path).with_context(|| format!("cannot load {}", path.display()))?);
    let tokenizer = Tokenizer::from_gguf(&file).context("cannot build the tokenizer")?;
    let template = ChatTemplate::from_gguf(&file).context("cannot read the chat template")?;
    let threads = args.threads.unwrap_or_else(default_threads).max(1);
    let mut runner = Runner::new(
        Arc::clone(&file),
        Kernels::detect(),
        threads,
        &LoadOptions::from_env(),
    )
    .with_context(|| format!("cannot load {}", path.display()))?;
    if let Some(dir) = std::env::var_os("OWL_TRACE") {
        runner.set_trace(Some(trace_to_dir(dir.into())?));
    }
    let n_ctx_train = runner.model.hparams().n_ctx_train.max(1);
    let n_ctx = args
        .ctx_size
        .unwrap_or(n_ctx_train.min(DEFAULT_CTX_CAP))
        .max(16);
    Ok(Loaded {
        session: Session::new(runner, n_ctx, N_BATCH),
        tokenizer,
        template,
    })
}

/// A tracer that writes each intermediate tensor to `dir/NAME.f32` (debugging aid: compare with
/// llama.cpp using scripts/trace_llama_cpp.py and scripts/compare_trace.py).
fn trace_to_dir(dir: std::path::PathBuf) -> Result<Box<owl_model::scratch::TraceFn>> {
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(Box::new(move |name: &str, data: &[f32]| {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        if let Err(e) = std::fs::write(dir.join(format!("{name}.f32")), bytes) {
            eprintln!("owl: trace write failed: {e}");
        }
    }))
}

fn gen_params(s: &SamplingArgs) -> Result<GenerateParams> {
    let sampling = s.params();
    sampling.validate().context("invalid sampling option")?;
    Ok(GenerateParams {
        max_tokens: s.max_tokens,
        sampling,
        stop_at_eog: !s.ignore_eos,
    })
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

/// Streams the reply; returns the answer (without a reasoning model's thinking).
fn stream_reply(
    m: &mut Loaded,
    prompt: &Prompt,
    params: &GenerateParams,
    thinking: ThinkingDisplay,
    out: &mut dyn Write,
    to_terminal: bool,
) -> Result<(String, GenerateStats)> {
    let splitter = prompt.splitter.clone();
    let mut decoder = StreamDecoder::with_special(
        splitter
            .as_ref()
            .is_some_and(ReplySplitter::needs_special_tokens),
    );
    let mut text = String::new();
    let mut write_err = None;
    let tok = &m.tokenizer;
    let mut sink = ReplySink {
        out,
        splitter,
        show: !thinking.hide,
        to_terminal,
        in_dim: false,
    };
    let stats = m
        .session
        .generate(&prompt.ids, params, &|id| tok.is_eog(id), &mut |id| {
            let piece = decoder.push(tok, id);
            if let Err(e) = sink.write(&piece, &mut text) {
                write_err = Some(e);
                return false;
            }
            true
        })?;
    let rest = decoder.finish();
    sink.finish(&rest, &mut text).ok();
    if let Some(e) = write_err {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("writing the reply");
        }
    }
    Ok((text, stats))
}

fn report(stats: &GenerateStats) {
    let pt = stats.prompt_time.as_secs_f64();
    let gt = stats.gen_time.as_secs_f64();
    let evaluated = stats.prompt_tokens - stats.reused_tokens;
    eprintln!(
        "owl: prompt {} tokens ({} reused) in {:.3}s = {:.1} tok/s; generated {} tokens in {:.3}s = {:.1} tok/s; stop: {:?}",
        stats.prompt_tokens,
        stats.reused_tokens,
        pt,
        evaluated as f64 / pt.max(1e-9),
        stats.generated,
        gt,
        stats.generated.saturating_sub(1) as f64 / gt.max(1e-9),
        stats.stop
    );
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

/// A tokenized prompt, and for a reasoning model whether it leaves a thinking block open.
struct Prompt {
    ids: Vec<u32>,
    /// How a reasoning model's reply splits into thinking and answer.
    splitter: Option<ReplySplitter>,
}

fn render(m: &Loaded, messages: &[ChatMessage], no_thinking: bool) -> Result<Prompt> {
    let Some(t) = &m.template else {
        bail!("this model has no chat template; use `owl run --raw` for plain text completion");
    };
    let mut extra = serde_json::Map::new();
    if no_thinking {
        extra.insert("enable_thinking".into(), serde_json::Value::Bool(false));
    }
    let text = t.render_with(messages, true, &extra)?;
    Ok(Prompt {
        ids: m.tokenizer.encode(&text, true, true)?,
        splitter: t.reasoning().map(|f| ReplySplitter::new(f, &text)),
    })
}

pub fn run(a: RunArgs) -> Result<()> {
    let prompt = read_prompt(a.prompt.as_deref())?;
    let params = gen_params(&a.sampling)?;
    let mut m = load(&a.model)?;
    let prompt = if a.raw {
        Prompt {
            ids: m.tokenizer.encode(&prompt, true, false)?,
            splitter: None,
        }
    } else {
        let mut msgs = Vec::new();
        if let Some(s) = &a.system {
            msgs.push(ChatMessage {
                role: "system".into(),
                content: s.clone(),
            });
        }
        msgs.push(ChatMessage {
            role: "user".into(),
            content: prompt,
        });
        render(&m, &msgs, a.thinking.no_thinking)?
    };
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = stdout.lock();
    let (text, stats) = stream_reply(
        &mut m,
        &prompt,
        &params,
        a.thinking.display(),
        &mut out,
        tty,
    )?;
    if !text.ends_with('\n') {
        out.write_all(b"\n").ok();
    }
    out.flush().ok();
    if a.model.verbose {
        report(&stats);
    }
    Ok(())
}

pub fn chat(a: ChatArgs) -> Result<()> {
    let params = gen_params(&a.sampling)?;
    let mut m = load(&a.model)?;
    if m.template.is_none() {
        bail!("this model has no chat template; use `owl run --raw` for plain text completion");
    }
    let system: Vec<ChatMessage> = a
        .system
        .iter()
        .map(|s| ChatMessage {
            role: "system".into(),
            content: s.clone(),
        })
        .collect();
    let mut history = system.clone();
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "owl: chatting ({} threads, context {}). /reset clears history, /bye or Ctrl-D leaves.",
            m.session.runner().n_threads(),
            m.session.n_ctx()
        );
    }
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
                m.session.reset();
                eprintln!("owl: history cleared");
                continue;
            }
            _ => {}
        }
        history.push(ChatMessage {
            role: "user".into(),
            content: msg.to_string(),
        });
        let prompt = render(&m, &history, a.thinking.no_thinking)?;
        if prompt.ids.len() >= m.session.n_ctx() {
            history.pop();
            eprintln!(
                "owl: the conversation ({} tokens) no longer fits the context ({}); /reset to start over",
                prompt.ids.len(),
                m.session.n_ctx()
            );
            continue;
        }
        let tty = stdout.is_terminal();
        let mut out = stdout.lock();
        let (text, stats) = stream_reply(
            &mut m,
            &prompt,
            &params,
            a.thinking.display(),
            &mut out,
            tty,
        )?;
        out.write_all(b"\n").ok();
        out.flush().ok();
        history.push(ChatMessage {
            role: "assistant".into(),
            content: text.trim().to_string(),
        });
        if a.model.verbose {
            report(&stats);
        }
    }
    Ok(())
}
