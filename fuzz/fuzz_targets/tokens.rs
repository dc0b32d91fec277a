//! The opaque strings callers send back: watch cursors, list and search page
//! tokens (against a query fingerprint taken from the input) and resource
//! names.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pressroom_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    let Some((query, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    checks::cursor(&text);
    checks::page_token_for(&text, *query);
    checks::resource_name("name", &text);
});
