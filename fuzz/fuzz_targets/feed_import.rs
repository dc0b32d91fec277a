//! The import parsers: JSON Lines items (proto3 JSON or ninjs) and XML
//! documents (RSS, Atom, NewsML-G2, NewsML 1.2; the first byte picks which),
//! each item then checked like a create.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pressroom_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    if let Some((&which, input)) = data.split_first() {
        checks::feed(which, input);
    }
});
