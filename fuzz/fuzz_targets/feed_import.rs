//! The import parsers: JSON Lines items and RSS/Atom feeds (the first byte
//! picks which), each item then checked like a create.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pressroom_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    if let Some((&which, input)) = data.split_first() {
        checks::feed(which, input);
    }
});
