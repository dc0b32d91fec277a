//! Fuzz targets for Pressroom: decoding and validation of every request
//! type, cursors, page tokens, names, search queries and the import parsers.
//! The targets live in `fuzz_targets/`; the oracles they share with the
//! property tests are in [`checks`]. Run them with `scripts/fuzz.sh`; see
//! `FUZZING.md`.

pub mod checks;
