//! Every other request type (the first byte picks which, see
//! `checks::REQUESTS`): protobuf decoding, then names, filters, page tokens,
//! cursors, start times and search queries as the server checks them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pressroom_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    if let Some((&which, message)) = data.split_first() {
        checks::request(which, message);
    }
});
