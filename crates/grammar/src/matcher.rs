//! Compiling constraints for one model and following them token by token.

use std::collections::HashMap;
use std::sync::Arc;

use llguidance::{Matcher, ParserFactory};
use owl_text::Tokenizer;
use toktrie::{SimpleVob, TokEnv};

use crate::vocab::OwlTokEnv;
use crate::{Constraint, GrammarError};

/// The constraint compiler of one model: its token trie and llguidance's factory, built once
/// (a few tens of milliseconds for a 150k vocabulary) and shared by every request.
#[derive(Clone)]
pub struct Grammars {
    factory: Arc<ParserFactory>,
    n_vocab: usize,
    /// Special tokens shaped `<…>`, by text, for [`crate::lark::special_literals`].
    specials: Arc<HashMap<String, u32>>,
}

impl std::fmt::Debug for Grammars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grammars")
            .field("n_vocab", &self.n_vocab)
            .finish_non_exhaustive()
    }
}

impl Grammars {
    /// The compiler for `tokenizer`, with masks of `n_vocab` entries (the model's logits).
    pub fn new(tokenizer: Arc<Tokenizer>, n_vocab: usize) -> Result<Grammars, GrammarError> {
        let owl_env = OwlTokEnv::new(tokenizer, n_vocab)?;
        let specials: HashMap<String, u32> = owl_env
            .specials()
            .iter()
            .filter(|(t, _)| t.starts_with('<') && t.ends_with('>'))
            .cloned()
            .collect();
        let env: TokEnv = Arc::new(owl_env);
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| GrammarError::Vocabulary(e.to_string()))?;
        factory.quiet();
        Ok(Grammars {
            factory: Arc::new(factory),
            n_vocab,
            specials: Arc::new(specials),
        })
    }

    /// Compiles `c` into the state one sequence follows; a bad schema, regex or grammar is
    /// [`GrammarError::Invalid`] with llguidance's explanation.
    pub fn compile(&self, c: &Constraint) -> Result<TokenConstraint, GrammarError> {
        let grammar = match c {
            Constraint::Lark(text) => {
                Constraint::Lark(crate::lark::special_literals(text, &self.specials)).to_grammar()
            }
            other => other.to_grammar(),
        };
        let parser = self
            .factory
            .create_parser(grammar)
            .map_err(|e| GrammarError::Invalid(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(GrammarError::Invalid(e));
        }
        Ok(TokenConstraint {
            matcher,
            n_vocab: self.n_vocab,
        })
    }
}

/// One sequence's position in its constraint.
pub struct TokenConstraint {
    matcher: Matcher,
    n_vocab: usize,
}

impl Clone for TokenConstraint {
    fn clone(&self) -> Self {
        TokenConstraint {
            matcher: self.matcher.deep_clone(),
            n_vocab: self.n_vocab,
        }
    }
}

impl std::fmt::Debug for TokenConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConstraint")
            .field("stopped", &self.matcher.is_stopped())
            .finish_non_exhaustive()
    }
}

/// The tokens allowed next.
#[derive(Clone, Debug)]
pub struct Mask {
    allowed: SimpleVob,
}

impl Mask {
    pub fn allows(&self, token: u32) -> bool {
        (token as usize) < self.allowed.len() && self.allowed.is_allowed(token)
    }

    /// How many tokens are allowed.
    pub fn count(&self) -> usize {
        self.allowed.num_set()
    }

    /// Sets every disallowed logit to −∞ (ids past the mask included).
    pub fn apply(&self, logits: &mut [f32]) {
        let n = self.allowed.len().min(logits.len());
        for (i, l) in logits[..n].iter_mut().enumerate() {
            if !self.allowed.is_allowed(i as u32) {
                *l = f32::NEG_INFINITY;
            }
        }
        for l in &mut logits[n..] {
            *l = f32::NEG_INFINITY;
        }
    }
}

impl TokenConstraint {
    /// The tokens that keep the reply inside the constraint (end-of-generation tokens
    /// included once the reply may end). Empty means the matcher is stuck.
    pub fn mask(&mut self) -> Result<Mask, GrammarError> {
        let allowed = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| GrammarError::Matcher(e.to_string()))?;
        let _ = self.n_vocab;
        Ok(Mask { allowed })
    }

    /// Advances past the chosen token.
    pub fn accept(&mut self, token: u32) -> Result<(), GrammarError> {
        self.matcher
            .consume_token(token)
            .map_err(|e| GrammarError::Matcher(e.to_string()))
    }

    /// The constraint is complete and allows nothing more (only end-of-generation).
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    /// The reply may end here.
    pub fn can_end(&mut self) -> bool {
        self.matcher.is_accepting().unwrap_or(false)
    }
}
