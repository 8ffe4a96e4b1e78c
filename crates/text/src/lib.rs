//! owl-text (being written)
