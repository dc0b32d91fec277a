//! The search query language parser.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pressroom_fuzz::checks;

fuzz_target!(|text: &str| checks::search_query(text));
